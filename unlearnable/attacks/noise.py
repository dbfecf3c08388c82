"""Sample-wise defensive noise from a source model: REM, EM and TAP (REM paper, Eq. 5 and
Appendix A.3; Table 5 gives the PGD settings).

One routine covers the three:

* REM -- x' = x + argmin_{|du| <= rho_u} E_t max_{|da| <= rho_a} CE(f(t(x + du) + da), y):
  K_u sign steps of alpha_u on du, each averaging the gradient over J sampled augmentations t,
  each with its own K_a-step PGD da of step alpha_a (REM Algorithm 1, lines 8-16);
* EM -- the same with rho_a = 0 and no EOT (J = 1, t = identity): error-minimising noise;
* TAP -- targeted adversarial poisoning: minimise CE(f(x + du), g(y)) with g(y) = y + 1 mod K,
  250 steps of eps/125 against a model trained on clean data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .pgd import PGD
from ..augment import crop_flip


@dataclass(frozen=True)
class NoiseSettings:
    method: str  # rem | em | tap
    eps: float  # rho_u, the protection budget on [0, 1] images
    steps: int = 10  # K_u
    step_size: float | None = None  # alpha_u; default eps / 5
    adv_eps: float = 0.0  # rho_a (REM); 0 for EM and TAP
    adv_steps: int = 10  # K_a
    eot: int = 1  # J, augmentations sampled per step (REM: 5)
    target_shift: int = 0  # TAP: aim at class (y + shift) mod K; 0 = error-minimising

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else self.eps / 5

    def to_dict(self) -> dict:
        return asdict(self)


def labels_for(settings: NoiseSettings, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The labels the noise makes the model predict: y itself, or TAP's permuted target."""
    return (y + settings.target_shift) % num_classes if settings.target_shift else y


def defensive_noise(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: NoiseSettings,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The perturbation du (same shape as x, |du| <= eps, x + du in [0, 1]) for the batch.

    The model is used in eval mode and left as it was; only du receives gradients.
    """
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    x = x.detach()
    target = labels_for(settings, y, _num_classes(model, x))
    adversary = PGD(settings.adv_eps, steps=settings.adv_steps, step_size=settings.adv_eps / 5) if settings.adv_eps > 0 else None
    delta = torch.zeros_like(x)
    try:
        with torch.enable_grad():
            for _ in range(settings.steps):
                delta.requires_grad_(True)
                grad = torch.zeros_like(x)
                for _ in range(settings.eot):
                    x_u = (x + delta).clamp(0, 1)
                    if settings.eot > 1:
                        x_u = crop_flip(x_u, generator=generator)
                    x_in = x_u
                    if adversary is not None:
                        x_adv = adversary(model, x_u, y, generator)
                        x_in = x_u + (x_adv - x_u).detach()  # da fixed, gradient flows to du
                    loss = F.cross_entropy(model(x_in).float(), target)
                    grad += torch.autograd.grad(loss, delta)[0]
                with torch.no_grad():
                    delta = (delta - settings.alpha * grad.sign()).clamp(-settings.eps, settings.eps)
                    delta = (x + delta).clamp(0, 1) - x
    finally:
        for p in params:
            p.requires_grad_(True)
        model.train(was_training)
    return delta.detach()


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return model(x[:1]).shape[1]
