"""Training a victim classifier from scratch: the would-be trainer `evaluate` plays.

The fast path: images stay uint8 on the device, each batch is converted and augmented on the
device in one go (random crop with 4-pixel padding, horizontal flip), channels_last memory
layout, bf16 autocast on CUDA.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace, asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from .schedule import cosine, set_lr, step_decay
from ..attacks.pgd import PGD, trades_loss
from ..augment import crop_flip
from ..device import autocast
from ..distributed import SINGLE, Context, SyncedOptimizer
from ..models.victims import VICTIMS, build_victim
from ..registry import Registry


@dataclass(frozen=True)
class VictimRecipe:
    arch: str = "small-cnn"  # registry name, see models.victims.VICTIMS
    epochs: int = 20  # passes over the training set
    batch_size: int = 128  # images per step
    lr: float = 0.05  # SGD initial learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine (to 0) | step (x0.1 at each milestone epoch)
    milestones: tuple[int, ...] = ()  # epochs, for schedule="step"
    augment: bool = True  # random crop (pad 4) + horizontal flip
    adv_eps: float = 0.0  # adversarial-training L-inf radius on [0, 1] images; 0 = standard training
    adv_loss: str = "pgd"  # pgd (Madry: train on PGD examples) | trades (beta 1)
    adv_steps: int = 10  # PGD steps, each of adv_eps / 4, random start


RECIPES: Registry[VictimRecipe] = Registry("--recipe", {
    # CPU default: small CNN, 20 epochs of cosine-annealed SGD; minutes on 2 cores.
    "quick": VictimRecipe(),
    # The GUE paper's evaluation protocol (ResNet-18, 100 epochs, decay at 75 and 90).
    "paper": VictimRecipe(arch="resnet18", epochs=100, batch_size=256, lr=0.01, schedule="step", milestones=(75, 90)),
    # A trainer who fine-tunes an ImageNet network: every layer, a few epochs at a small learning
    # rate (the features are already good), pictures at 96 px, crop+flip.
    "pretrained": VictimRecipe(arch="efficientnet-lite0", epochs=4, batch_size=64, lr=0.01, weight_decay=1e-4),
    # ... or trains only a new last layer on frozen features (a linear probe): a larger learning rate.
    "linear-probe": VictimRecipe(arch="efficientnet-lite0-probe", epochs=5, batch_size=128, lr=0.1, weight_decay=0.0),
})


@dataclass
class VictimResult:
    accuracy: float  # clean-test accuracy after the last epoch, in [0, 1]
    peak_accuracy: float  # best clean-test accuracy over the epochs
    peak_epoch: int
    seconds: float  # wall time, including the per-epoch test evaluation
    images_per_s: float  # training images per second, test evaluation excluded
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def victim_recipe(name: str, arch: str | None = None, epochs: int | None = None, batch_size: int | None = None,
                  adv_eps: float = 0.0, adv_loss: str = "pgd") -> VictimRecipe:
    """A named recipe with the options given; under adversarial training the paper recipe takes
    the GUE paper's protocol (lr 0.1)."""
    from ..errors import ConfigError

    if adv_loss not in ("pgd", "trades"):
        raise ConfigError(f"unknown --adv-loss {adv_loss!r}; choose pgd or trades")
    given = {k: v for k, v in (("arch", arch), ("epochs", epochs), ("batch_size", batch_size)) if v is not None}
    recipe = replace(RECIPES.get(name), adv_eps=adv_eps, adv_loss=adv_loss, **given)
    VICTIMS.get(recipe.arch)  # refuses an unknown --arch, with the list
    if adv_eps > 0 and name == "paper":
        recipe = replace(recipe, lr=0.1)
    return recipe


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on uint8 images ``x`` (N, 3, H, W)."""
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        xb = x[i:i + batch_size].to(device, non_blocking=True).float().div_(255)
        with autocast(device):
            pred = model(xb.contiguous(memory_format=torch.channels_last)).argmax(1)
        correct += int((pred == y[i:i + batch_size].to(device)).sum())
    return correct / max(1, len(y))


def _lr_at(recipe: VictimRecipe, epoch: float) -> float:
    if recipe.schedule == "cosine":
        return cosine(recipe.lr, epoch, recipe.epochs)
    return step_decay(recipe.lr, epoch, recipe.milestones)


class _Training:
    """One victim's optimiser, adversary and sampler: :func:`train_victim` runs its epochs."""

    def __init__(self, model: torch.nn.Module, recipe: VictimRecipe, num_classes: int, seed: int,
                 device: torch.device, batch_defense: Callable | None, ctx: Context):
        self.model = model.to(device).to(memory_format=torch.channels_last)
        self.recipe, self.num_classes, self.device, self.batch_defense, self.ctx = recipe, num_classes, device, batch_defense, ctx
        self.sampler = torch.Generator().manual_seed(seed)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                   weight_decay=recipe.weight_decay, nesterov=True)
        self.step = SyncedOptimizer(self.opt, ctx)
        self.attack = PGD(recipe.adv_eps, steps=recipe.adv_steps) if recipe.adv_eps > 0 else None

    def loss(self, xb: torch.Tensor, yb: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss of one batch (standard, PGD or TRADES) and the logits it came from."""
        with autocast(self.device):
            if self.attack is not None and self.recipe.adv_loss == "trades":
                return trades_loss(self.model, xb, yb, self.attack, beta=1.0)
            if self.attack is not None:
                xb = self.attack(self.model, xb, yb)
            logits = self.model(xb)
            return F.cross_entropy(logits.float(), target), logits

    def epoch(self, x_dev: torch.Tensor, y_dev: torch.Tensor, epoch: int) -> tuple[float, int]:
        """One pass over uint8 pictures on the device; returns (summed loss, correct), over every process."""
        recipe, ctx, n = self.recipe, self.ctx, len(y_dev)
        self.model.train()
        perm = torch.randperm(n, generator=self.sampler).to(self.device)
        steps = math.ceil(n / recipe.batch_size)
        loss_sum, correct = 0.0, 0
        for i in range(steps):
            set_lr(self.opt, _lr_at(recipe, epoch + i / steps))
            idx = ctx.shard(perm[i * recipe.batch_size:(i + 1) * recipe.batch_size])
            xb = x_dev[idx].float().div_(255)
            if recipe.augment:
                xb = crop_flip(xb, generator=self.sampler)
            yb = target = y_dev[idx]
            if self.batch_defense is not None:
                xb, target = self.batch_defense(xb, F.one_hot(yb, self.num_classes).float(), self.sampler)
            loss, logits = self.loss(xb.contiguous(memory_format=torch.channels_last), yb, target)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.step.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        if ctx.active:  # every process ends the epoch with the same batch-norm statistics and tallies
            ctx.mean_([b for b in self.model.buffers() if b.is_floating_point()])
            loss_sum, correct = (v * ctx.world for v in ctx.mean_([torch.tensor([loss_sum, float(correct)])])[0].tolist())
        return loss_sum, correct


def train_victim(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    recipe: VictimRecipe,
    num_classes: int,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[dict], None] | None = None,
    batch_defense: Callable | None = None,
    model: torch.nn.Module | None = None,
    ctx: Context = SINGLE,
) -> VictimResult:
    """Train ``recipe.arch`` from scratch on uint8 images; report clean-test accuracy per epoch.

    ``batch_defense(x, y_soft, generator) -> (x, y_soft)`` is a training-time defense
    (mixup, cutout, cutmix) applied to each augmented batch, with soft labels. ``model``
    trains a caller's model in place (TAP's source model) instead of a fresh one. Under
    torchrun (``ctx``) each process trains on its share of every batch, gradients averaged.
    """
    torch.manual_seed(seed)
    run = _Training(model if model is not None else build_victim(recipe.arch, num_classes), recipe, num_classes,
                    seed, device, batch_defense, ctx)
    x_dev, y_dev = train_x.to(device), train_y.to(device)
    history, start, eval_seconds = [], time.perf_counter(), 0.0
    for epoch in range(recipe.epochs):
        loss_sum, correct = run.epoch(x_dev, y_dev, epoch)
        eval_start = time.perf_counter()
        acc = accuracy(run.model, test_x, test_y, device)
        eval_seconds += time.perf_counter() - eval_start
        n = len(train_y)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_accuracy": correct / n, "test_accuracy": acc}
        history.append(record)
        if on_epoch:
            on_epoch(record)
    seen = recipe.epochs * len(train_y)
    seconds = time.perf_counter() - start
    peak = max(history, key=lambda r: r["test_accuracy"])
    return VictimResult(
        accuracy=history[-1]["test_accuracy"], peak_accuracy=peak["test_accuracy"], peak_epoch=peak["epoch"],
        seconds=seconds, images_per_s=seen / max(seconds - eval_seconds, 1e-9), history=history,
    )
