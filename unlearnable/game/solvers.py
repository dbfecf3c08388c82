"""One interface for the game's step: min-min warm start, BOME, TGDA.

A :class:`Solver` takes one :class:`GameBatch` (the players, their optimizers, the batch and
what the follower sees of it) and returns the figures for the progress display. Each solver
carries its own settings (:class:`~.bome.BomeSettings`, :class:`~.tgda.TgdaSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import nn

from .bome import BomeSettings, bome_step
from .follower import FollowerLoss, standard_loss
from .minmin import minmin_step
from .tgda import TgdaSettings, tgda_round


@dataclass
class GameBatch:
    generator: nn.Module
    victim: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    gen_opt: torch.optim.Optimizer
    victim_opt: torch.optim.Optimizer
    transform: Callable[[torch.Tensor], torch.Tensor] = lambda t: t  # what the follower sees of x + delta
    label_aware: bool = False  # A(x, y) rather than g(x)
    loss_fn: FollowerLoss = standard_loss  # the follower's L_c (TRADES for GUE-AT)
    sync: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None  # gradient averaging (torchrun)

    @property
    def players(self) -> tuple:
        return self.generator, self.victim, self.x, self.y, self.gen_opt, self.victim_opt


class Solver(Protocol):
    name: str

    def step(self, batch: GameBatch) -> dict[str, float]: ...


class MinMin:
    """The warm start: both players minimise J_c (plain min-min, even for GUE-AT)."""

    name = "min-min"

    def step(self, batch: GameBatch) -> dict[str, float]:
        return minmin_step(*batch.players, batch.transform, batch.label_aware)


@dataclass(frozen=True)
class Bome:
    settings: BomeSettings
    name: str = "bome"

    def step(self, batch: GameBatch) -> dict[str, float]:
        return bome_step(*batch.players, self.settings, batch.transform, batch.label_aware, batch.loss_fn, batch.sync)


@dataclass(frozen=True)
class Tgda:
    settings: TgdaSettings
    name: str = "tgda"

    def step(self, batch: GameBatch) -> dict[str, float]:
        return tgda_round(*batch.players, self.settings, batch.transform, batch.label_aware, batch.loss_fn)
