"""Small, learnable synthetic picture sets, made on the spot (demo and tests; nothing downloaded).

Class c of K is a shape (disc, square, cross, ring, diamond, bar, ...) of random size,
position and colour on a random colour-gradient background with sensor-like noise. The
classes survive the trainer's flips and crops, a CNN learns them from the content within
a few epochs, and a protection that works shows as a clear accuracy drop.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .io.codec import encode_image
from .io.files import atomic_write_bytes

CONTRAST = 0.6  # how far a shape's colour departs from the background, 0-1


def _shape_mask(kind: int, dy: torch.Tensor, dx: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    dist = (dx**2 + dy**2).sqrt()
    cheb = torch.maximum(dx.abs(), dy.abs())
    kind = kind % 6
    if kind == 0:  # disc
        return dist < r
    if kind == 1:  # square
        return cheb < r * 0.85
    if kind == 2:  # cross
        return (cheb < r) & ((dx.abs() < r / 3) | (dy.abs() < r / 3))
    if kind == 3:  # ring
        return (dist < r) & (dist > r * 0.55)
    if kind == 4:  # diamond
        return dx.abs() + dy.abs() < r
    return (cheb < r) & (dy.abs() < r / 3)  # horizontal bar


def synthetic_images(num_classes: int, per_class: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 3, size, size) and int64 labels (N,), classes interleaved."""
    g = torch.Generator().manual_seed(seed)
    n = num_classes * per_class
    y = torch.arange(n) % num_classes
    coords = torch.arange(size).float()
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    r = size * (0.18 + 0.14 * torch.rand(n, generator=g))
    cy = size / 2 + (size / 2 - r) * (2 * torch.rand(n, generator=g) - 1) * 0.8
    cx = size / 2 + (size / 2 - r) * (2 * torch.rand(n, generator=g) - 1) * 0.8
    dy = yy[None] - cy[:, None, None]
    dx = xx[None] - cx[:, None, None]
    mask = torch.zeros(n, size, size, dtype=torch.bool)
    for c in range(num_classes):
        sel = y == c
        mask[sel] = _shape_mask(c, dy[sel], dx[sel], r[sel, None, None])
    bg_a, bg_b = torch.rand(n, 3, generator=g), torch.rand(n, 3, generator=g)
    t = (xx / size)[None, None] * torch.rand(n, 1, 1, 1, generator=g) + (yy / size)[None, None] * 0.5
    background = bg_a[:, :, None, None] * (1 - t) + bg_b[:, :, None, None] * t
    colour = torch.rand(n, 3, generator=g)[:, :, None, None].expand(-1, -1, size, size)
    img = torch.where(mask[:, None], CONTRAST * colour + (1 - CONTRAST) * background, background)
    img = img + 0.05 * torch.randn(n, 3, size, size, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), y


def write_folder(root: Path, x: torch.Tensor, y: torch.Tensor, class_names: list[str]) -> None:
    """Write images as PNGs into ``root/<class>/NNNN.png``."""
    root = Path(root)
    for i, (img, label) in enumerate(zip(x, y.tolist())):
        atomic_write_bytes(root / class_names[label] / f"{i:05d}.png", encode_image(img.permute(1, 2, 0), None))


def make_synthetic_folder(root: Path, num_classes: int = 4, per_class: int = 50, size: int = 32, seed: int = 0) -> list[str]:
    """Create a labelled synthetic folder; returns the class names."""
    names = [f"class{c}" for c in range(num_classes)]
    x, y = synthetic_images(num_classes, per_class, size, seed)
    write_folder(root, x, y, names)
    return names
