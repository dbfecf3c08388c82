"""Training the source model of REM, EM and TAP, the baselines of the GUE paper.

* REM and EM (REM paper, Algorithm 1): each iteration finds the defensive noise du of a
  batch (:func:`defensive_noise`), samples one augmentation t, finds the adversarial da
  (radius rho_a; none for EM) and takes one SGD step on t(x + du) + da. Paper schedule
  (Appendix A.3.1): 5,000 iterations, batch 128, SGD lr 0.1, momentum 0.9, weight decay 5e-4,
  x0.1 every 2,000 iterations, ResNet-18 source, K_u = 10, J = 5, K_a = 10.
* TAP: a model trained normally on the clean pictures (the evaluation engine, no second loop).

The source model, not the noise, is what is saved: `poison` recomputes the noise for any new
picture with the same settings.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .schedule import set_lr, step_decay
from ..attacks.pgd import PGD
from ..augment import crop_flip
from ..data import load_labelled
from ..errors import UnlearnableError
from ..io.genfile import SourceModelInfo, save_source_model
from ..models.victims import build_victim
from .victim import VictimRecipe, train_victim
from ..registry import Registry
from ..attacks.noise import NoiseSettings, defensive_noise


@dataclass(frozen=True)
class SourceTrainingConfig:
    method: str = "rem"  # rem | em | tap
    eps: float = 8 / 255  # rho_u
    eps_text: str = "8/255"
    adv_eps: float | None = None  # rho_a (REM); default eps / 2, the REM paper's recommendation
    arch: str = "small-cnn"  # source model
    iterations: int = 200  # SGD steps (REM/EM); paper 5,000
    epochs: int | None = None  # passes over the pictures instead of iterations (REM/EM), or TAP's tap_epochs
    lr_every: int = 80  # decay the learning rate x0.1 every this many iterations; paper 2,000
    batch_size: int = 128
    lr: float = 0.1
    steps: int = 5  # K_u; paper 10 (REM, EM), 250 (TAP)
    step_size: float | None = None  # alpha_u; default eps / 5 (REM, EM), eps / 125 (TAP)
    adv_steps: int = 3  # K_a; paper 10
    eot: int = 2  # J; paper 5
    tap_epochs: int = 15  # TAP: epochs of clean training of the source model
    image_size: int = 32
    seed: int = 0
    fraction: float | None = None  # train on a seeded random fraction of the pictures
    max_images: int | None = None  # ... or at most this many

    def steps_for(self, n: int) -> int:
        """REM/EM: SGD iterations on n pictures (--epochs counts passes over them)."""
        return self.iterations if self.epochs is None else self.epochs * math.ceil(n / self.batch_size)

    def noise_settings(self) -> NoiseSettings:
        """The per-batch noise optimisation `poison` runs with this source model."""
        if self.method == "tap":
            return NoiseSettings("tap", self.eps, self.steps, self.step_size or self.eps / 125, target_shift=1)
        if self.method == "em":
            return NoiseSettings("em", self.eps, self.steps, self.step_size)
        rho_a = self.eps / 2 if self.adv_eps is None else self.adv_eps
        return NoiseSettings("rem", self.eps, self.steps, self.step_size, rho_a, self.adv_steps, self.eot)


SOURCE_PRESETS: Registry[dict[str, SourceTrainingConfig]] = Registry("--preset", {
    # minutes on a 2-core CPU: fewer iterations and inner steps than the paper (docs/methods.md, "The method family")
    "cpu": {
        "rem": SourceTrainingConfig(method="rem"),
        "em": SourceTrainingConfig(method="em", steps=10, eot=1),
        "tap": SourceTrainingConfig(method="tap", steps=50, step_size=(8 / 255) / 25),
    },
    # the REM paper, Appendix A.3 and Table 5
    "paper": {
        "rem": SourceTrainingConfig(method="rem", arch="resnet18", iterations=5000, lr_every=2000, steps=10, adv_steps=10, eot=5),
        "em": SourceTrainingConfig(method="em", arch="resnet18", iterations=5000, lr_every=2000, steps=10, eot=1),
        "tap": SourceTrainingConfig(method="tap", arch="resnet18", steps=250, tap_epochs=100),
    },
})


def source_config(preset: str, method: str, eps: float, eps_text: str, **overrides) -> SourceTrainingConfig:
    """A preset's settings for ``method`` at budget ``eps``; step sizes follow eps unless given."""
    base = SOURCE_PRESETS[preset][method]
    if method == "tap" and base.step_size is not None and "step_size" not in overrides:
        overrides["step_size"] = base.step_size * eps / base.eps
    return replace(base, eps=eps, eps_text=eps_text, **overrides)


def train_source(
    x_all: torch.Tensor, y_all: torch.Tensor, num_classes: int, config: SourceTrainingConfig, device: torch.device,
    on_step: Callable[[dict], None] | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train the source model on uint8 pictures (N, 3, H, W); returns it and a summary."""
    torch.manual_seed(config.seed)
    model = build_victim(config.arch, num_classes).to(device)
    start = time.perf_counter()
    if config.method == "tap":
        recipe = VictimRecipe(arch=config.arch, epochs=config.epochs or config.tap_epochs)
        held = slice(0, min(1000, len(y_all)))  # progress only: accuracy on seen pictures
        per_epoch = math.ceil(len(y_all) / recipe.batch_size)

        def on_epoch(r: dict) -> None:
            if on_step:
                on_step({"step": r["epoch"] * per_epoch, "steps": recipe.epochs * per_epoch, "loss": r["train_loss"]})

        result = train_victim(x_all, y_all, x_all[held], y_all[held], recipe, num_classes, config.seed, device,
                              on_epoch=on_epoch, model=model)
        summary = {"epochs": recipe.epochs, "train_accuracy": result.history[-1]["train_accuracy"]}
    else:
        summary = _min_min_max(model, x_all.to(device), y_all.to(device), config, device, on_step)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    return model.eval(), summary


def _min_min_max(model, x_all, y_all, config: SourceTrainingConfig, device, on_step) -> dict:
    settings = config.noise_settings()
    sampler = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=5e-4)
    adversary = PGD(settings.adv_eps, steps=settings.adv_steps, step_size=settings.adv_eps / 5) if settings.adv_eps > 0 else None
    n = len(y_all)
    perm, pos, loss = torch.randperm(n, generator=sampler).to(device), 0, torch.zeros(())
    iterations = config.steps_for(n)
    every = max(1, round(config.lr_every * iterations / config.iterations))  # the preset's schedule, stretched
    for it in range(iterations):
        if pos + config.batch_size > n:
            perm, pos = torch.randperm(n, generator=sampler).to(device), 0
        idx = perm[pos:pos + config.batch_size]
        pos += config.batch_size
        x, y = x_all[idx].float().div_(255), y_all[idx]
        delta = defensive_noise(model, x, y, settings, sampler)
        x_t = crop_flip((x + delta).clamp(0, 1), generator=sampler)
        if adversary is not None:
            x_t = adversary(model, x_t, y)
        set_lr(opt, step_decay(config.lr, it, every=every))
        model.train()
        loss = F.cross_entropy(model(x_t).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step:
            on_step({"step": it + 1, "steps": iterations, "loss": loss.item()})
    return {"iterations": iterations, "final_loss": loss.item(), "noise": asdict(settings)}


def train_source_file(
    data_root: Path, out: Path, config: SourceTrainingConfig, device: torch.device,
    on_load: Callable[[int, int], None] | None = None, on_step: Callable[[dict], None] | None = None,
) -> dict:
    """Train the source model of ``config.method`` on a labelled folder and write it to ``out``."""
    data = load_labelled(data_root, config.image_size, limit=config.max_images, fraction=config.fraction,
                         seed=config.seed, on_progress=on_load)
    k = len(data.class_names)
    if k < 2:
        raise UnlearnableError(f"{data_root} has {k} class folder; {config.method.upper()} needs at least 2 classes")
    model, summary = train_source(data.x, data.y, k, config, device, on_step)
    info = SourceModelInfo(
        method=config.method, arch=config.arch, noise=config.noise_settings().to_dict(), eps_text=config.eps_text,
        image_size=config.image_size, class_names=data.class_names,
        training={**asdict(config), **summary, "images": len(data)},
    )
    save_source_model(out, model, info)
    return {"output": str(out), "images": len(data), "skipped": len(data.skipped),
            "skipped_files": [asdict(s) for s in data.skipped], **summary}
