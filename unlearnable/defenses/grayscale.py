"""Grayscale, kept as 3 equal channels (ITU-R 601 luma, as PIL's "L" mode)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Defense, in_chunks

LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def to_gray(x: torch.Tensor) -> torch.Tensor:
    return (x * LUMA.to(x.device)).sum(1, keepdim=True).expand_as(x)


@dataclass(frozen=True)
class Grayscale(Defense):
    def purify(self, x):
        return in_chunks(x, to_gray)
