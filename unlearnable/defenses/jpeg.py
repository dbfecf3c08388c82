"""JPEG re-encoding at quality q (a trainer's cheapest purification)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .base import Defense


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) through PIL's JPEG encoder and decoder at ``quality`` (1-100)."""
    out = torch.empty_like(x)
    for i, img in enumerate(x):
        buf = io.BytesIO()
        Image.fromarray(img.permute(1, 2, 0).cpu().numpy()).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as dec:
            out[i] = torch.from_numpy(np.asarray(dec.convert("RGB")).copy()).permute(2, 0, 1)
    return out


@dataclass(frozen=True)
class JPEG(Defense):
    quality: int = 10  # JPEG quality 1-100

    def purify(self, x):
        return jpeg_roundtrip(x, self.quality)
