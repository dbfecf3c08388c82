"""3x3 median, mean and Gaussian filters (reflect padding, shape and range preserved)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Defense, in_chunks


def median3(t: torch.Tensor) -> torch.Tensor:
    patches = F.unfold(F.pad(t, (1, 1, 1, 1), mode="reflect"), 3)  # (N, C*9, H*W)
    n, c, h, w = t.shape
    return patches.view(n, c, 9, h * w).median(dim=2).values.view(n, c, h, w)


def blur3(t: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    c = t.shape[1]
    k = kernel.to(t).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(t, (1, 1, 1, 1), mode="reflect"), k, groups=c)


MEAN3 = torch.full((3, 3), 1 / 9)
GAUSS3 = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16


@dataclass(frozen=True)
class Filter(Defense):
    kind: str = "median"  # median | mean | gaussian

    def purify(self, x):
        if self.kind == "median":
            return in_chunks(x, median3)
        return in_chunks(x, lambda t: blur3(t, MEAN3 if self.kind == "mean" else GAUSS3))
