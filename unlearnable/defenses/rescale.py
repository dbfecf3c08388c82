"""Downscale then upscale: a trainer who trains at a lower resolution than the published picture."""

from __future__ import annotations

from dataclasses import dataclass

from ..resize import down_up

from .base import Defense, in_chunks


@dataclass(frozen=True)
class Rescale(Defense):
    factor: float = 0.5  # downscaling factor, 0-1

    def purify(self, x):
        return in_chunks(x, lambda t: down_up(t, self.factor))
