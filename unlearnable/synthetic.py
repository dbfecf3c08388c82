"""Small, learnable synthetic picture sets, made on the spot (demo and tests; nothing downloaded).

Class c of K is an oriented sinusoidal grating (angle c * pi / K) with random phase,
frequency and colour, on a noisy random background: easy for a CNN to learn from the
content, so a protection that works shows as a clear accuracy drop.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .io.images import atomic_write_bytes, encode_image


def synthetic_images(num_classes: int, per_class: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 3, size, size) and int64 labels (N,), classes interleaved."""
    g = torch.Generator().manual_seed(seed)
    n = num_classes * per_class
    y = torch.arange(n) % num_classes
    angle = y.float() * math.pi / num_classes + 0.15 * (torch.rand(n, generator=g) - 0.5)
    freq = 2 * math.pi * (0.12 + 0.10 * torch.rand(n, generator=g))
    phase = 2 * math.pi * torch.rand(n, generator=g)
    coords = torch.arange(size).float()
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    proj = xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
    grating = torch.sin(freq[:, None, None] * proj + phase[:, None, None])  # (N, S, S) in [-1, 1]
    tint = 0.3 + 0.7 * torch.rand(n, 3, generator=g)
    base = 0.2 + 0.6 * torch.rand(n, 3, generator=g)
    img = base[:, :, None, None] + 0.25 * tint[:, :, None, None] * grating[:, None]
    img = img + 0.06 * torch.randn(n, 3, size, size, generator=g)
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
