"""Image Shortcut Squeezing (Liu, Zhao & Larson 2023): grayscale, then JPEG at quality 10.

The ISS paper uses each squeeze on its own (grayscale against L2-type, JPEG-10 against L-inf
perturbations); both are also in the registry separately. This entry is the combination.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Defense
from .grayscale import Grayscale
from .jpeg import jpeg_roundtrip


@dataclass(frozen=True)
class ISS(Defense):
    quality: int = 10

    def purify(self, x):
        return jpeg_roundtrip(Grayscale("", "").purify(x), self.quality)
