"""Payoffs of the GUE game (Liu et al., "Game-Theoretic Unlearnable Example Attacks")."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def surrogate_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_sur (Eq. 3): -max_{k != y} CE(f(x), k), per sample; bounded above by -log(K-1).

    The leader's payoff J_a is the mean of ``-surrogate_loss`` over the *clean* batch, which it
    minimises: every wrong class becomes equally likely and the true one unlikely.
    """
    logp = F.log_softmax(logits.float(), dim=1)
    wrong = logp.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("inf"))
    # max_{k != y} CE(x, k) = -min_{k != y} log p_k
    return wrong.min(dim=1).values


def leader_payoff(logits_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """J_a(theta) = mean over the clean batch of max_{k != y} CE(f_theta(x), k) (to minimise)."""
    return -surrogate_loss(logits_clean, y).mean()


def follower_payoff(logits_poisoned: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """J_c(w, theta) = mean CE(f_theta(x + g_w(x)), y) on the protected batch."""
    return F.cross_entropy(logits_poisoned.float(), y)
