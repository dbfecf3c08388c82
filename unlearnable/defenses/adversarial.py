"""Adversarial training as a defense: the victim trains on PGD examples (evaluate's engine)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Defense


@dataclass(frozen=True)
class AdversarialTraining(Defense):
    eps: float = 8 / 255  # L-inf radius on [0, 1] images
    loss: str = "pgd"  # pgd | trades

    def recipe_overrides(self):
        return {"adv_eps": self.eps, "adv_loss": self.loss}
