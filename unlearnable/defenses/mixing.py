"""Training-time defenses on whole batches: mixup, cutout, cutmix (soft labels)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Defense


def _box(h: int, w: int, area: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    bh, bw = int(h * area**0.5), int(w * area**0.5)
    top = int(torch.randint(0, h - bh + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - bw + 1, (1,), generator=generator))
    return top, left, bh, bw


def _beta(alpha: float, generator: torch.Generator) -> float:
    """A Beta(alpha, alpha) draw. Beta(1, 1) is uniform, drawn from the seeded ``generator``;
    other alphas use torch's sampler (seeded by ``--seed`` through torch.manual_seed)."""
    if alpha == 1.0:
        return float(torch.rand(1, generator=generator))
    return float(torch.distributions.Beta(alpha, alpha).sample())


@dataclass(frozen=True)
class Mixup(Defense):
    alpha: float = 1.0  # Beta(alpha, alpha) mixing weight (Zhang et al. 2018)

    def batch(self, x, y, generator):
        lam = _beta(self.alpha, generator)
        perm = torch.randperm(len(x), generator=generator).to(x.device)
        return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


@dataclass(frozen=True)
class Cutout(Defense):
    size: float = 0.5  # side of the erased square as a fraction of the picture side (DeVries & Taylor 2017)

    def batch(self, x, y, generator):
        n, _, h, w = x.shape
        side = int(h * self.size)
        cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
        cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
        rows = torch.arange(h, device=x.device)[None, :, None]
        cols = torch.arange(w, device=x.device)[None, None, :]
        inside = ((rows - cy[:, None, None]).abs() <= side // 2) & ((cols - cx[:, None, None]).abs() <= side // 2)
        return x * (~inside)[:, None].to(x.dtype), y


@dataclass(frozen=True)
class CutMix(Defense):
    alpha: float = 1.0  # Beta(alpha, alpha) area (Yun et al. 2019)

    def batch(self, x, y, generator):
        n, _, h, w = x.shape
        lam = _beta(self.alpha, generator)
        top, left, bh, bw = _box(h, w, 1 - lam, generator)
        perm = torch.randperm(n, generator=generator).to(x.device)
        out = x.clone()
        out[:, :, top:top + bh, left:left + bw] = x[perm, :, top:top + bh, left:left + bw]
        kept = 1 - (bh * bw) / (h * w)
        return out, kept * y + (1 - kept) * y[perm]
