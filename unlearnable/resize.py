"""Resizing, in one place: bilinear and antialiased on the way down, as Pillow's resize is
(tests/test_robust.py checks it), for training copies, key copies, the trainer's downscaling
and `poison`'s work size."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(x: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, *size), bilinear (antialiased: Pillow's filter when it shrinks)."""
    return F.interpolate(x, size=size, mode="bilinear", antialias=antialias, align_corners=False)


def scaled(h: int, w: int, factor: float) -> tuple[int, int]:
    """(h, w) times ``factor``, rounded, at least one pixel."""
    return max(1, round(h * factor)), max(1, round(w * factor))


def down_up(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Down by ``factor`` and back up to the same size: what a trainer's lower resolution keeps."""
    h, w = x.shape[-2:]
    return resize(resize(x, scaled(h, w, factor)), (h, w), antialias=False)


def fit_center(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) float -> (N, 3, size, size): shorter side to ``size``, centre crop."""
    h, w = x.shape[2:]
    if (h, w) != (size, size):
        nh, nw = (max(size, s) for s in scaled(h, w, size / min(h, w)))
        x = resize(x, (nh, nw))
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[:, :, top:top + size, left:left + size]
    return x


def fit_to_size(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> uint8 (3, size, size): shorter side resized to ``size``, centre crop."""
    img = rgb.permute(2, 0, 1)
    if tuple(img.shape[1:]) == (size, size):
        return img.contiguous()
    return fit_center(img[None].float(), size)[0].round().clamp(0, 255).to(torch.uint8)
