"""TGDA, total gradient descent ascent (Lu, Kamath & Yu 2022, Algorithm 1): a second solver
of the GUE game, with the same generator and payoffs as BOME.

The leader (generator w) minimises J_a(theta*(w)); the follower (victim theta) minimises
h = J_c(w, theta). The leader follows the total derivative

    D_w J_a = grad_w J_a - grad_{w theta} h . (grad^2_{theta theta} h)^{-1} . grad_theta J_a

(grad_w J_a = 0 here: J_a is measured on clean pictures). The inverse-Hessian-vector product
is found by conjugate gradient on Hessian-vector products (double backward), with damping
(H + damping I) since a network's Hessian need not be positive definite. One round is m
leader steps, then n plain gradient steps of the follower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .batch import GameBatch
from .losses import leader_payoff

Vec = list[torch.Tensor]


@dataclass(frozen=True)
class TgdaSettings:
    leader_steps: int = 1  # m, total-gradient steps of the generator per round (paper: 1)
    follower_steps: int = 20  # n, gradient steps of the victim per round (paper: 20)
    cg_steps: int = 10  # conjugate-gradient iterations per inverse-Hessian-vector product
    cg_tol: float = 1e-4  # stop CG when the residual norm falls below tol * ||b||
    damping: float = 0.1  # added to the Hessian's diagonal, keeps CG well-posed


def _dot(a: Vec, b: Vec) -> torch.Tensor:
    return sum((u * v).sum() for u, v in zip(a, b))


def conjugate_gradient(matvec: Callable[[Vec], Vec], b: Vec, steps: int, tol: float) -> tuple[Vec, int]:
    """Solve A v = b for symmetric positive-definite A given only v -> A v; returns (v, iterations).

    A network's Hessian (plus damping) can still have negative curvature: CG then stops at
    the last iterate (or returns b itself, the gradient direction, on the first step), the
    usual truncated-CG safeguard, instead of stepping to infinity.
    """
    v = [torch.zeros_like(t) for t in b]
    r = [t.clone() for t in b]
    p = [t.clone() for t in b]
    rr = _dot(r, r)
    stop = (tol ** 2) * rr
    for it in range(steps):
        if rr <= stop:
            return v, it
        ap = matvec(p)
        curvature = _dot(p, ap)
        if not curvature > 0:
            return (v if it else [t.clone() for t in b]), it
        alpha = rr / curvature
        v = [vi + alpha * pi for vi, pi in zip(v, p)]
        r = [ri - alpha * ai for ri, ai in zip(r, ap)]
        rr_new = _dot(r, r)
        p = [ri + (rr_new / rr) * pi for ri, pi in zip(r, p)]
        rr = rr_new
    return v, steps


def _grads(out: torch.Tensor, params: Vec, **kw) -> Vec:
    grads = torch.autograd.grad(out, params, allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def total_derivative(
    h: torch.Tensor, leader_loss: torch.Tensor, w_params: Vec, t_params: Vec, settings: TgdaSettings
) -> tuple[Vec, int]:
    """D_w of ``leader_loss`` through the follower's best response to ``h``; returns (D_w, CG iterations).

    ``h`` and ``leader_loss`` must still have their graphs; ``h`` is differentiated twice.
    """
    g_l_theta = _grads(leader_loss, t_params, retain_graph=True)
    g_l_w = _grads(leader_loss, w_params, retain_graph=True)
    g_h_theta = _grads(h, t_params, create_graph=True)

    def hvp(v: Vec) -> Vec:
        hv = _grads(g_h_theta, t_params, grad_outputs=v, retain_graph=True)
        return [a + settings.damping * b for a, b in zip(hv, v)]

    v, iters = conjugate_gradient(hvp, [g.detach() for g in g_l_theta], settings.cg_steps, settings.cg_tol)
    mixed = _grads(g_h_theta, w_params, grad_outputs=v, retain_graph=False)
    return [a - b for a, b in zip(g_l_w, mixed)], iters


def tgda_round(batch: GameBatch, settings: TgdaSettings) -> dict[str, float]:
    """m total-gradient steps of the generator, then n gradient steps of the victim, on (x, y)."""
    generator, victim, x, y, gen_opt, victim_opt = batch.players
    transform, loss_fn, yg = batch.transform, batch.loss_fn, (y if batch.label_aware else None)
    w_params = [p for p in generator.parameters() if p.requires_grad]
    t_params = [p for p in victim.parameters() if p.requires_grad]
    iters = 0
    for _ in range(settings.leader_steps):
        h = loss_fn(victim, transform((x + generator(x, yg)).clamp(0, 1)), y)
        j_a = leader_payoff(victim(x), y)
        d_w, iters = total_derivative(h, j_a, w_params, t_params, settings)
        for p, g in zip(w_params, d_w):
            p.grad = g
        gen_opt.step()
        gen_opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        delta = generator(x, yg)
    for _ in range(settings.follower_steps):
        victim_opt.zero_grad(set_to_none=True)
        j_c = loss_fn(victim, transform((x + delta).clamp(0, 1)), y)
        j_c.backward()
        victim_opt.step()
    victim_opt.zero_grad(set_to_none=True)
    return {"J_c": j_c.item() if settings.follower_steps else h.item(), "J_a": j_a.item(), "cg": float(iters)}
