"""Networks: the perturbation generator and the victim classifiers."""
