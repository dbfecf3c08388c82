"""Downscale then upscale: a trainer who trains at a lower resolution than the published picture."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from .base import Defense, in_chunks


@dataclass(frozen=True)
class Rescale(Defense):
    factor: float = 0.5  # downscaling factor, 0-1

    def purify(self, x):
        h, w = x.shape[-2:]

        def fn(t):
            small = F.interpolate(t, scale_factor=self.factor, mode="bilinear", antialias=True, align_corners=False)
            return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)

        return in_chunks(x, fn)
