"""The learning-rate schedules of every training loop, in one place."""

from __future__ import annotations

import math

import torch


def step_decay(lr: float, t: float, milestones: tuple[float, ...] = (), every: int = 0) -> float:
    """``lr`` times 0.1 for each milestone reached by ``t`` (epochs or iterations), or every ``every``."""
    drops = sum(t >= m for m in milestones) + (int(t // every) if every else 0)
    return lr * 0.1 ** drops


def cosine(lr: float, t: float, length: float) -> float:
    """Cosine annealing from ``lr`` at t = 0 to 0 at t = ``length``."""
    return lr * 0.5 * (1 + math.cos(math.pi * t / length))


def epochs_text(n: int) -> str:
    """"1 epoch", "3 epochs": how every table and title names a number of epochs."""
    return f"{n} epoch{'s' if n != 1 else ''}"


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
