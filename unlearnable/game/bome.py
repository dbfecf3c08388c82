"""BOME, the first-order bilevel solver of the GUE game (GUE paper, Algorithm 1).

One outer step on a batch (x, y):
  1. theta^T: T steps of Adam on J_c(w_k, .) from a *copy* of theta_k, with the generator's
     output held constant (detached), so the real victim is untouched and the generator is
     not back-propagated through T times.
  2. q(w, theta) = J_c(w, theta) - J_c(w, theta^T), theta^T held fixed.
  3. lambda = max((rho ||grad q||^2 - <grad J_a, grad q>) / ||grad q||^2, 0) over the joint
     (w, theta) gradient (grad_w J_a = 0: the leader's payoff is on clean data).
  4. theta <- theta - beta_cls (grad_theta J_a + lambda grad_theta q);
     w <- w - beta_atk lambda grad_w q  (through the optimizers given).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .batch import GameBatch
from .follower import FollowerLoss, standard_loss
from .losses import leader_payoff


@dataclass(frozen=True)
class BomeSettings:
    inner_steps: int = 10  # T, the paper's default
    inner_lr: float = 1e-3  # Adam step for theta^T; the paper says 1e-3, the authors' code 1e-4
    rho: float = 1.5  # barrier strength phi = rho ||grad q||^2


def bome_lambda(grad_l: list[torch.Tensor], grad_q: list[torch.Tensor], rho: float) -> torch.Tensor:
    """lambda = max((rho ||g_q||^2 - <g_l, g_q>) / ||g_q||^2, 0); 0 when g_q vanishes."""
    qq = sum((g * g).sum() for g in grad_q)
    lq = sum((a * b).sum() for a, b in zip(grad_l, grad_q))
    if qq <= 0:
        return torch.zeros((), device=grad_q[0].device)
    return torch.clamp((rho * qq - lq) / qq, min=0.0)


def inner_response(
    victim: nn.Module, x_poisoned: torch.Tensor, y: torch.Tensor, steps: int, lr: float,
    loss_fn: FollowerLoss = standard_loss,
) -> nn.Module:
    """theta^T: ``steps`` Adam steps on J_c from a copy of the victim; the victim is unchanged."""
    follower = copy.deepcopy(victim)
    opt = torch.optim.Adam(follower.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(follower, x_poisoned, y).backward()
        opt.step()
    for p in follower.parameters():
        p.requires_grad_(False)
    return follower


def bome_step(batch: GameBatch, settings: BomeSettings) -> dict[str, float]:
    """One outer BOME step; returns J_c, J_a, q and lambda for the progress display.

    The batch's ``transform`` is applied to the protected pictures (e.g. the trainer's
    augmentation); ``label_aware`` passes y to the generator, A(x, y), instead of the paper's
    g_w(x); ``loss_fn`` is the follower's L_c (cross-entropy, or TRADES for GUE-AT); ``sync``
    averages gradients across processes (torchrun) before lambda is computed, so every
    process takes the same step on the global batch.
    """
    generator, victim, x, y, gen_opt, victim_opt = batch.players
    transform, label_aware, loss_fn, sync = batch.transform, batch.label_aware, batch.loss_fn, batch.sync
    delta = generator(x, y if label_aware else None)
    x_fixed = transform((x + delta.detach()).clamp(0, 1))
    follower = inner_response(victim, x_fixed, y, settings.inner_steps, settings.inner_lr, loss_fn)

    x_poisoned = transform((x + delta).clamp(0, 1))
    j_c = loss_fn(victim, x_poisoned, y)
    q = j_c - loss_fn(follower, x_poisoned, y)
    j_a = leader_payoff(victim(x), y)

    w_params = [p for p in generator.parameters() if p.requires_grad]
    t_params = [p for p in victim.parameters() if p.requires_grad]
    grad_q = torch.autograd.grad(q, w_params + t_params, allow_unused=True)
    grad_q = [torch.zeros_like(p) if g is None else g for p, g in zip(w_params + t_params, grad_q)]
    grad_a_theta = torch.autograd.grad(j_a, t_params, allow_unused=True)
    grad_a_theta = [torch.zeros_like(p) if g is None else g for p, g in zip(t_params, grad_a_theta)]
    if sync is not None:
        sync(grad_q)
        sync(grad_a_theta)
    grad_l = [torch.zeros_like(p) for p in w_params] + grad_a_theta
    lam = bome_lambda(grad_l, grad_q, settings.rho)

    for p, g in zip(w_params, grad_q[: len(w_params)]):
        p.grad = lam * g
    for p, ga, gq in zip(t_params, grad_a_theta, grad_q[len(w_params):]):
        p.grad = ga + lam * gq
    gen_opt.step()
    victim_opt.step()
    gen_opt.zero_grad(set_to_none=True)
    victim_opt.zero_grad(set_to_none=True)
    return {"J_c": j_c.item(), "J_a": j_a.item(), "q": q.item(), "lambda": lam.item()}
