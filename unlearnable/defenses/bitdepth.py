"""Bit-depth reduction: keep ``bits`` bits per channel (2 by default)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Defense, in_chunks


@dataclass(frozen=True)
class BitDepth(Defense):
    bits: int = 2  # bits kept per channel, 1-8

    def purify(self, x):
        levels = 2**self.bits - 1
        return in_chunks(x, lambda t: (t * levels).round() / levels)
