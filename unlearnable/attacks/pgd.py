"""L-inf projected gradient descent (Madry et al. 2018) and the TRADES loss (Zhang et al. 2019).

The attack object holds the hyperparameters; the model is passed when it is called, so one
PGD serves adversarial training in `evaluate`, `defend` and the GUE-AT follower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class PGD:
    eps: float  # L-inf radius on [0, 1] images, e.g. 4/255
    steps: int = 10
    step_size: float | None = None  # default eps / 4 (the GUE paper's adversarial-training setting)
    random_start: bool = True

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else self.eps / 4

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Untargeted attack: maximise CE(model(x + d), y) over ||d||_inf <= eps, x + d in [0, 1].

        ``generator`` (a CPU ``torch.Generator``) draws the random start, for a reproducible result.
        """
        init = None
        if self.random_start and generator is not None:
            init = ((torch.rand(x.shape, generator=generator) * 2 - 1) * self.eps).to(x.device, x.dtype)
        return self.run(model, x, lambda logits: F.cross_entropy(logits.float(), y), init=init)

    def run(self, model: nn.Module, x: torch.Tensor, objective, init: torch.Tensor | None = None) -> torch.Tensor:
        """Maximise ``objective(model(x_adv))`` inside the L-inf ball around x; detached x_adv.

        ``init`` overrides the starting offset (default: uniform in the ball, or zero).
        """
        was_training = model.training
        model.eval()
        x = x.detach()
        if init is None:
            init = torch.empty_like(x).uniform_(-self.eps, self.eps) if self.random_start else torch.zeros_like(x)
        delta = ((x + init.clamp(-self.eps, self.eps)).clamp(0, 1) - x).requires_grad_(True)
        for _ in range(self.steps):
            loss = objective(model(x + delta))
            (grad,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta += self.alpha * grad.sign()
                delta.clamp_(-self.eps, self.eps)
                delta.copy_((x + delta).clamp(0, 1) - x)
        model.train(was_training)
        return (x + delta).detach()


def trades_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: PGD, beta: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """TRADES: CE(f(x), y) + beta * KL(f(x) || f(x')), x' maximising the KL from a small random start.

    Returns the loss and the clean logits f(x) (for the caller's accuracy bookkeeping).
    """
    with torch.no_grad():
        p_clean = F.softmax(model(x).float(), dim=1)

    def kl(logits):
        return F.kl_div(F.log_softmax(logits.float(), dim=1), p_clean, reduction="batchmean")

    x_adv = attack.run(model, x, kl, init=0.001 * torch.randn_like(x))
    logits = model(x)
    robust = F.kl_div(F.log_softmax(model(x_adv).float(), dim=1), F.softmax(logits.float(), dim=1), reduction="batchmean")
    return F.cross_entropy(logits.float(), y) + beta * robust, logits
