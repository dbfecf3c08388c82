"""The follower's training loss L_c in the GUE game.

``standard`` is cross-entropy (the game G_ue); ``trades`` is the TRADES loss of the GUE
paper's adversarial game G_at: CE(f(x'), y) + (1/lambda) max_mu KL(f(x') || f(x' + mu)),
lambda = 1, the inner maximisation by 10-step L-inf PGD of step eps_d/4 from a small random
start. x' is the protected picture; gradients reach the generator through x' in both terms
(mu is a fixed offset once found).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..attacks.pgd import PGD, trades_loss
from .losses import follower_payoff

FollowerLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def standard_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return follower_payoff(model(x), y)


def follower_loss(adv_eps: float = 0.0, beta: float = 1.0, steps: int = 10) -> FollowerLoss:
    """L_c for a follower trained normally (adv_eps 0) or with TRADES at radius ``adv_eps``."""
    if adv_eps <= 0:
        return standard_loss
    attack = PGD(adv_eps, steps=steps)

    def trades(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return trades_loss(model, x, y, attack, beta)[0]

    return trades
