"""One interface for the game's step: min-min warm start, BOME, TGDA.

A :class:`Solver` takes one :class:`GameBatch` (the players, their optimizers, the batch and
what the follower sees of it) and returns the figures for the progress display. Each solver
carries its own settings (:class:`~.bome.BomeSettings`, :class:`~.tgda.TgdaSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .batch import GameBatch
from .bome import BomeSettings, bome_step
from .minmin import minmin_step
from .tgda import TgdaSettings, tgda_round

__all__ = ["GameBatch", "Solver", "MinMin", "Bome", "Tgda"]


class Solver(Protocol):
    name: str

    def step(self, batch: GameBatch) -> dict[str, float]: ...


class MinMin:
    """The warm start: both players minimise J_c (plain min-min, even for GUE-AT)."""

    name = "min-min"

    def step(self, batch: GameBatch) -> dict[str, float]:
        return minmin_step(batch)


@dataclass(frozen=True)
class Bome:
    settings: BomeSettings
    name: str = "bome"

    def step(self, batch: GameBatch) -> dict[str, float]:
        return bome_step(batch, self.settings)


@dataclass(frozen=True)
class Tgda:
    settings: TgdaSettings
    name: str = "tgda"

    def step(self, batch: GameBatch) -> dict[str, float]:
        return tgda_round(batch, self.settings)
