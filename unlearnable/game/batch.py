"""What one step of the game works on: the two players, their optimizers, the batch, and
what the follower sees of it. Every solver step (:mod:`.minmin`, :mod:`.bome`, :mod:`.tgda`)
takes one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from .follower import FollowerLoss, standard_loss

if TYPE_CHECKING:
    from .push import FeaturePush


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
    push: "FeaturePush | None" = None  # the generator's second loss in min-min steps (--feature-push)

    @property
    def players(self) -> tuple:
        return self.generator, self.victim, self.x, self.y, self.gen_opt, self.victim_opt
