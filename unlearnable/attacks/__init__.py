"""Attacks used by adversarial training (and, later, by the baselines)."""
