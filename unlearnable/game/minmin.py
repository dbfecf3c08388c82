"""Error-minimising (min-min) generator steps, used to warm-start the GUE game.

Both players minimise the same loss J_c(w, theta) = CE(f_theta(x + g_w(x, y)), y): the
generator learns perturbations that are *easy* to fit (shortcuts), the classical
unlearnable-examples objective (Huang et al. 2021) in generator form. Starting the game from
such a generator is what makes the CPU preset effective within minutes (docs/methods.md, "Why the CPU preset departs from the paper").
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

from .batch import GameBatch
from .follower import standard_loss


@contextmanager
def batch_norm_counted_twice(module: nn.Module) -> Iterator[None]:
    """One training forward that updates the batch-norm running statistics as two forwards on
    the same batch did: momentum 1 - (1 - m)^2 instead of m, and the batch counted twice.

    The min-min step once ran the generator twice on each batch (once for the victim's step,
    once for its own). It now runs it once; this keeps the statistics, and so every file the
    generator is saved to, as they were (to rounding).
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.training and m.track_running_stats and m.momentum is not None]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1 - (1 - m.momentum) ** 2
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked += 1  # the forward counted one


def minmin_step(batch: GameBatch) -> dict[str, float]:
    """One victim step on the protected batch, then one generator step on the same loss.

    The loss is plain cross-entropy even for GUE-AT: TRADES costs about 11 times as much a
    step, and the adversarial follower enters in the game epochs that follow. The generator
    runs once: the victim learns from its output detached, and the generator's step goes back
    through the same output after the victim's update (the generator has not changed between).
    """
    generator, victim, x, y, gen_opt, victim_opt = batch.players
    transform, yg = batch.transform, (y if batch.label_aware else None)
    with batch_norm_counted_twice(generator):
        delta = generator(x, yg)
    victim_opt.zero_grad(set_to_none=True)
    loss_v = standard_loss(victim, transform((x + delta.detach()).clamp(0, 1)), y)
    loss_v.backward()
    victim_opt.step()

    gen_opt.zero_grad(set_to_none=True)
    loss_g = standard_loss(victim, transform((x + delta).clamp(0, 1)), y)
    stats = {"J_c": loss_g.item(), "victim_loss": loss_v.item()}
    if batch.push is not None:  # --feature-push: the ImageNet features towards the next key's too
        loss_p = batch.push.loss(x, delta, y)
        stats["push"] = loss_p.item()
        loss_g = loss_g + loss_p
    loss_g.backward()
    victim_opt.zero_grad(set_to_none=True)  # the victim only learns in its own step
    gen_opt.step()
    return stats
