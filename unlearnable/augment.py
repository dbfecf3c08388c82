"""Whole-batch augmentation on the device (random crop with padding, horizontal flip).

Differentiable in the pixels, so the game can see what a trainer's augmentation does to a
perturbation. One index gather per batch, no per-image Python work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """x: (N, C, H, W) float. Zero-pad by ``pad`` pixels, take a random HxW crop, flip half."""
    n, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    rows = (torch.arange(h, device=dev)[None, :] + dy[:, None])  # (N, H)
    cols = torch.arange(w, device=dev)[None, :].expand(n, w)
    cols = torch.where(flip[:, None], (w - 1) - cols, cols) + dx[:, None]  # (N, W)
    idx_r = rows[:, None, :, None].expand(n, c, h, padded.shape[3])
    out = padded.gather(2, idx_r)
    idx_c = cols[:, None, None, :].expand(n, c, h, w)
    return out.gather(3, idx_c)
