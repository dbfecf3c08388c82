"""`train-generator`: solve the GUE game on a folder of pictures and save the generator.

The game needs a class y for every picture (the follower learns to predict it, a
label-aware generator plants a pattern keyed by it). A data owner has none, so by default
(``keys="clusters"``) y is the picture's K-means cluster (:mod:`unlearnable.models.keys`),
and the key model is saved with the generator so new pictures find their key themselves.
``keys="folders"`` takes y from class sub-folders instead, and stores the class means as
the key model for pictures that arrive unsorted.

The presets (docs/methods.md, "Why the CPU preset departs from the paper"):

* ``paper`` -- the GUE paper exactly: image-only U-Net 64-512, ResNet-18 follower, BOME with
  T = 10 Adam inner steps (lr 1e-3, the paper's value; the authors' code uses 1e-4), rho 1.5,
  plain SGD lr 0.01 (victim) and 0.1 (generator), batch 256, 50 epochs, no augmentation.
* ``cpu`` (default) -- the same game, made to reach protection in minutes on a laptop:
  a label-aware generator A(x, y) (the paper's unified framework), warm-started with the
  error-minimising min-min objective, then refined by BOME with T = 2 inner steps and Adam
  on the generator, with the trainer's crop+flip augmentation inside the loop.
* ``paper-at`` -- GUE-AT, the paper's adversarial game G_at: the ``paper`` settings with a
  TRADES follower (eps_d 4/255, beta 1), 150 epochs, learning rates x0.1 at 120 and 140.

``adv_eps > 0`` puts the TRADES follower into any preset (GUE-AT); ``solver="tgda"`` solves
the same game with total gradient descent ascent instead of BOME.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from .schedule import set_lr, step_decay
from ..augment import crop_flip
from ..robust import ROBUST, trainer_transforms
from ..data import load_pictures
from ..distributed import SINGLE, Context, SyncedOptimizer
from ..errors import ConfigError, UnlearnableError
from ..game.bome import BomeSettings
from ..game.follower import follower_loss
from ..game.push import PUSH_NETWORK, PUSH_SIZE, FeaturePush, clean_features
from ..game.solvers import Bome, GameBatch, MinMin, Solver, Tgda
from ..game.tgda import TgdaSettings
from ..io.genfile import GeneratorInfo, load_keys, save_generator
from ..models.keys import ClusterKeys, KeyConfig
from ..models.pretrained import PRETRAINED, check_encoder, load_encoder
from ..models.unet import GENERATOR_PRESETS, GeneratorConfig, build_generator
from ..models.victims import build_victim
from ..registry import Registry
from .checkpoint import load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class GeneratorTrainingConfig:
    eps: float = 8 / 255  # L-inf budget on [0, 1] images
    eps_text: str = "8/255"  # as the user wrote it, stored in the file
    generator: str = "small"  # U-Net preset: small (~0.5M params) | paper (64-512)
    label_aware: bool = True  # generator sees the class (or key): A(x, y)
    keys: str = "clusters"  # where y comes from: clusters (K-means, no labels needed) | folders (class sub-folders)
    clusters: int | None = None  # K for keys="clusters"; None: 10, fewer (N // 20, at least 2) below 200 pictures
    kmeans_starts: int = 1  # k-means++ starts (seeds seed, seed + 1, ...); the lowest within-cluster distance is kept
    key_neighbours: int = 0  # > 0: K-means refined so that each picture shares a key with its nearest neighbours (this many)
    encoder: str | None = None  # key features: an ImageNet encoder's name (PRETRAINED), a file with a trained encoder, or None (mean colours)
    key_size: int | None = None  # pixels an ImageNet encoder sees (pictures fitted to it) when it finds the keys; None: the encoder's own
    victim: str = "small-cnn"  # follower architecture in the game
    # an ImageNet network (PRETRAINED) whose features the perturbation also moves towards the next
    # key's, in the min-min epochs (game/push.py); None: no push
    feature_push: str | None = None
    push_size: int = PUSH_SIZE  # pixels that network sees (enlarged, as a fine-tuning trainer enlarges them)
    push_batch: int = 32  # pictures of each batch the push is computed on (it costs far more a picture)
    push_weight: float = 1.0
    # the network whose key centres a keyed generator file carries, so that `poison --push-steps`
    # can push pictures it never saw (feature_push's network when that is set); None: no centres
    push_network: str | None = PUSH_NETWORK
    warmup_epochs: int = 8  # min-min epochs before the game
    epochs: int = 4  # game epochs (BOME or TGDA)
    solver: str = "bome"  # bome | tgda
    batch_size: int = 128  # images per outer step
    # the solvers' own settings: BOME's T = 2 Adam steps (paper 10), TGDA's n = 1 victim step
    # per round (paper 20; 1 keeps a CPU epoch short)
    bome: BomeSettings = BomeSettings(inner_steps=2)
    tgda: TgdaSettings = TgdaSettings(follower_steps=1)
    adv_eps: float = 0.0  # GUE-AT: TRADES follower radius eps_d on [0, 1] (0: standard follower)
    adv_eps_text: str = "0"
    milestones: tuple[int, ...] = ()  # epochs at which both learning rates are multiplied by 0.1
    min_steps: int = 0  # stretch the epochs (both phases) until the run takes at least this many steps
    max_stretched_epochs: int = 150  # ...but a small folder's stretched run stops at this many epochs
    victim_lr: float = 0.01  # beta_cls, SGD
    victim_momentum: float = 0.9
    gen_optimizer: str = "adam"  # adam | sgd
    gen_lr: float = 1e-3  # beta_atk
    augment: bool = True  # crop+flip inside the game, as the trainer will do
    robust: tuple[str, ...] = ()  # the trainer's preprocessing inside the game (robust.ROBUST names)
    luma: bool = False  # one perturbation pattern for R, G and B (brightness only)
    block: int = 1  # > 1: the pattern is constant over block x block cells (low frequencies, for JPEG)
    image_size: int = 32  # pixels; pictures are resized (shorter side) and centre-cropped
    fraction: float | None = None  # train on a seeded random fraction of the folder
    max_images: int | None = None  # ... or at most this many pictures
    max_minutes: float | None = None  # stop (and save) after this much wall time
    seed: int = 0
    # > 1: that many generators (seeds seed, seed + 1, ...), the best by a label-free check kept;
    # None: several on a folder large enough for the check, else one (methods/candidates.py, how_many)
    candidates: int | None = 1

    @property
    def total_epochs(self) -> int:
        return self.warmup_epochs + self.epochs


# The `cpu` preset's (warm-up, game) epochs when an option of the game itself is given (--solver,
# --adv-eps, --inner-steps, TGDA's): the schedule the cpu preset had before it dropped the game.
CPU_GAME_SCHEDULE = (8, 4)

PAPER_BOME = BomeSettings(inner_steps=10, inner_lr=1e-3)  # the paper's T and inner step (its code: 1e-4)

PRESETS: Registry[GeneratorTrainingConfig] = Registry("--preset", {
    # 948 steps = 12 min-min epochs of 10,000 pictures; a smaller folder gets more epochs, the same
    # work. No BOME phase: measured to protect more without it; a game option brings it back
    # (CPU_GAME_SCHEDULE). Why: docs/methods.md, "Why the CPU preset departs from the paper".
    # The follower sees a grayscale copy of half the pictures (--robust grayscale): measured better
    # than none with and without the trainer's grayscale (docs/trainer.md, "Training against the trainer's preprocessing").
    # Several candidates where the check can tell them apart: seeds differ by up to 20 points at
    # full size, and the check kept the strongest (docs/label-free.md, "`--candidates 3` at full size").
    "cpu": GeneratorTrainingConfig(min_steps=948, robust=("grayscale",), warmup_epochs=12, epochs=0, candidates=None),
    "paper": GeneratorTrainingConfig(
        generator="paper", label_aware=False, victim="resnet18", warmup_epochs=0, epochs=50,
        batch_size=256, bome=PAPER_BOME, victim_lr=0.01, victim_momentum=0.0,
        gen_optimizer="sgd", gen_lr=0.1, augment=False,
    ),
    # GUE-AT(8/255, 4/255): the paper's adversarial game, 150 epochs, decay at 120 and 140.
    "paper-at": GeneratorTrainingConfig(
        generator="paper", label_aware=False, victim="resnet18", warmup_epochs=0, epochs=150,
        batch_size=256, bome=PAPER_BOME, victim_lr=0.01, victim_momentum=0.0,
        gen_optimizer="sgd", gen_lr=0.1, augment=False, adv_eps=4 / 255, adv_eps_text="4/255",
        milestones=(120, 140),
    ),
    # The paper's algorithm and step sizes with the CPU-sized networks: the baseline row.
    "paper-small": GeneratorTrainingConfig(
        label_aware=False, warmup_epochs=0, epochs=50, bome=PAPER_BOME,
        victim_lr=0.01, victim_momentum=0.0, gen_optimizer="sgd", gen_lr=0.1, augment=False,
    ),
})


@dataclass
class TrainingResult:
    output: str
    images: int
    skipped: int
    epochs_done: int
    steps: int
    seconds: float
    images_per_s: float
    stopped_early: bool
    final_stats: dict
    keys: str = ""  # where the generator's keys came from, e.g. "10 clusters (efficientnet-lite0 features)"
    key_hint: str = ""  # how to choose the other key source, where the folder suggests it
    paused: bool = False  # stopped at pause_after: the checkpoint is kept for a resume
    skipped_files: list[dict] = field(default_factory=list)  # {"path", "reason"} of each picture left out

    def to_dict(self) -> dict:
        return asdict(self)


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".ckpt")


def _optimizer(kind: str, params, lr: float, momentum: float = 0.9):
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    raise UnlearnableError(f"unknown optimizer {kind!r}; use adam or sgd")


def train_generator(
    data_root: Path,
    out: Path,
    config: GeneratorTrainingConfig,
    device: torch.device,
    resume: bool = False,
    on_load: Callable[[int, int], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    on_keys: Callable[[int, int], None] | None = None,
    on_push: Callable[[int, int], None] | None = None,
    ctx: Context = SINGLE,
    pause_after: float | None = None,
    shared_features: dict | None = None,
) -> TrainingResult:
    """Train a generator on the pictures under ``data_root`` (any layout) and write it to ``out``.

    A checkpoint (``<out>.ckpt``) is written after every epoch; ``resume=True`` continues
    from it. ``pause_after`` = F stops after that fraction of the run's epochs (at least one):
    the generator as it is then is written to ``out`` and the checkpoint kept, so that
    ``resume=True`` continues the same run to its end. ``shared_features``: see :func:`fit_keys` (and the push's features, :func:`fit_push`).
    ``on_push`` hears of the push network's pass over the pictures (``feature_push``). ``on_step`` receives a dict with epoch, step, phase, J_c, J_a, lambda, images/s.
    Under torchrun (``ctx``), each process takes its share of every batch and gradients are
    averaged; only rank 0 writes files.
    """
    out = Path(out)
    ckpt = _checkpoint_for(out, resume)
    _check_names(config)
    torch.manual_seed(config.seed)
    data, keys, y_all = _read_and_key(data_root, config, device, on_load, on_keys, shared_features)
    config = stretch_schedule(config, len(data))
    push = fit_push(data, y_all, keys.config.clusters, config, device, on_push, shared_features)
    if push is not None and config.label_aware:  # the file carries the centres, for `poison --push-steps`
        keys = keys.with_push(push.encoder.name, push.size, push.mean, push.centres)
    push = push if config.feature_push else None  # the game's second loss only when asked for
    players = _Players.build(config, keys, device)
    progress = {"epoch": 0, "steps": 0, "seconds": 0.0}
    if resume:
        progress = load_checkpoint(ckpt, players.modules, players.optimizers, device)
        if progress.get("config") != _config_key(config, data):
            raise UnlearnableError(
                f"{ckpt} was made with different options or data; rerun with the same options, or delete it"
            )
    progress["config"] = _config_key(config, data)
    pause_epoch = None if pause_after is None else max(1, round(pause_after * config.total_epochs))
    stopped_early, stats = _play(players, data.x.to(device), y_all, config, progress, ckpt, ctx, on_step,
                                 pause_epoch, push)
    paused = progress["epoch"] < config.total_epochs and not stopped_early  # at pause_epoch
    seconds = progress["seconds"]
    n = len(y_all)
    info = GeneratorInfo(
        config=players.gen_config, eps_text=config.eps_text, image_size=config.image_size,
        class_names=data.class_names if config.keys == "folders" else [],
        method="gue-at" if config.adv_eps > 0 else "gue", solver=config.solver if config.epochs else "min-min",
        victim=config.victim,
        training={**asdict(config), "images": n, "steps": progress["steps"], "seconds": round(seconds, 1),
                  "stopped_early": stopped_early, **({"paused_at_epoch": progress["epoch"]} if paused else {})},
    )
    if ctx.is_main:
        save_generator(out, players.generator.eval(), info)
        if not paused:
            ckpt.unlink()
    ctx.barrier()
    return TrainingResult(
        output=str(out), images=n, skipped=len(data.skipped), skipped_files=[asdict(s) for s in data.skipped],
        epochs_done=progress["epoch"], steps=progress["steps"],
        seconds=seconds, images_per_s=progress["steps"] * config.batch_size / max(seconds, 1e-9),
        stopped_early=stopped_early, final_stats=stats, keys=_describe_keys(config, keys.config),
        key_hint=_key_hint(config, data.paths), paused=paused,
    )


def _checkpoint_for(out: Path, resume: bool) -> Path:
    """The checkpoint beside ``out``, after checking that this run may write and resume there."""
    if out.is_dir():
        raise UnlearnableError(f"--out {out} is a folder; name the file to write, e.g. {out / 'gen.safetensors'}")
    try:  # the checkpoint is written beside it after the first epoch: fail now, not then
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnlearnableError(f"cannot create the folder for --out {out}: {exc.strerror or exc}") from None
    ckpt = checkpoint_path(out)
    if ckpt.exists() and not resume:
        raise UnlearnableError(
            f"an interrupted run left {ckpt}; add --resume to continue it, or delete it to start over"
        )
    if resume and not ckpt.exists():
        raise UnlearnableError(f"--resume: no checkpoint {ckpt} to resume from; run without --resume")
    return ckpt


def check_pattern_keys(config: GeneratorTrainingConfig) -> None:
    """A generator of one pattern per key (a preset without U-Net widths) needs keys: refused otherwise."""
    if not GENERATOR_PRESETS[config.generator] and not config.label_aware:
        raise ConfigError(f"--generator {config.generator} plants one pattern per key and needs keys: drop "
                          "--image-only (a paper preset: give --label-aware)")


def _check_names(config: GeneratorTrainingConfig) -> None:
    """Every registry name in the settings is one this version knows (a config may come from code, not the CLI)."""
    if config.solver not in ("bome", "tgda"):
        raise UnlearnableError(f"unknown solver {config.solver!r}; use bome or tgda")
    if config.generator not in GENERATOR_PRESETS:
        raise UnlearnableError(f"unknown generator preset {config.generator!r}; use {', '.join(GENERATOR_PRESETS)}")
    check_pattern_keys(config)
    if any(name not in ROBUST for name in config.robust):
        raise UnlearnableError(f"unknown robust transformation in {config.robust}; use {', '.join(ROBUST)}")
    if config.keys not in KEY_SOURCES:
        raise UnlearnableError(f"unknown key source {config.keys!r}; use {' or '.join(KEY_SOURCES)}")
    if config.push_network is not None and config.push_network not in PRETRAINED:
        raise UnlearnableError(f"unknown push network {config.push_network!r}; use {', '.join(PRETRAINED)}")
    if config.feature_push is not None:
        if config.feature_push not in PRETRAINED:
            raise UnlearnableError(f"unknown --feature-push network {config.feature_push!r}; use {', '.join(PRETRAINED)}")
        if not config.label_aware:
            raise UnlearnableError("--feature-push moves each key's pictures towards another key: it needs keys; "
                                   "drop --image-only")
        if config.epochs:
            raise UnlearnableError("--feature-push joins the min-min epochs only; drop the game's options "
                                   "(--epochs, --solver, --adv-eps)")


def _key_size(config: GeneratorTrainingConfig) -> int:
    return config.key_size or PRETRAINED[config.encoder].key_size


def _read_and_key(data_root: Path, config: GeneratorTrainingConfig, device: torch.device, on_load, on_keys,
                  shared_features: dict | None = None):
    """The pictures (uint8 at the game's size), the key model and every picture's key."""
    # an ImageNet encoder finds the keys in a larger copy of each picture than the game's
    key_size = _key_size(config) if config.label_aware and config.encoder in PRETRAINED else None
    data = load_pictures(
        data_root, config.image_size, "folders" if config.keys == "folders" else "none",
        limit=config.max_images, fraction=config.fraction, seed=config.seed, on_progress=on_load, key_size=key_size,
    )
    keys, y_all = fit_keys(data, config, device, on_keys, shared_features)
    data.x_keys = None  # the game needs only the small copies
    return data, keys, y_all


@dataclass
class _Players:
    """The leader and the follower, their optimizers, and the generator's config for the file."""

    generator: torch.nn.Module  # a U-Net or a KeyPatternGenerator (build_generator)
    victim: torch.nn.Module
    gen_opt: torch.optim.Optimizer
    victim_opt: torch.optim.Optimizer
    gen_config: GeneratorConfig

    @classmethod
    def build(cls, config: GeneratorTrainingConfig, keys: ClusterKeys, device: torch.device) -> "_Players":
        k = keys.config.clusters
        channels = GENERATOR_PRESETS[config.generator]
        gen_config = GeneratorConfig(
            channels=channels or GeneratorConfig.channels, num_classes=k if config.label_aware else 0, eps=config.eps,
            keys=keys.config if config.label_aware else None, luma=config.luma, block=config.block,
            patterns=0 if channels else config.image_size,  # no channels: one pattern per key, at the training size
        )
        generator = build_generator(gen_config).to(device)
        if config.label_aware:
            generator.keys.load_state_dict(keys.state_dict())
        victim = build_victim(config.victim, k).to(device)
        if device.type in ("cpu", "cuda"):
            # channels-last weights make every convolution of both players faster on a CPU (measured by
            # examples/step_cost.py --memory-formats; docs/results.md, "Channels-last players") and suit
            # CUDA's tensor cores; files and checkpoints are written contiguous, so nothing else sees it
            generator, victim = (m.to(memory_format=torch.channels_last) for m in (generator, victim))
        gen_opt = _optimizer(config.gen_optimizer, generator.parameters(), config.gen_lr)
        victim_opt = torch.optim.SGD(victim.parameters(), lr=config.victim_lr, momentum=config.victim_momentum)
        return cls(generator, victim, gen_opt, victim_opt, gen_config)

    @property
    def modules(self) -> dict:
        return {"generator": self.generator, "victim": self.victim}

    @property
    def optimizers(self) -> dict:
        return {"generator": self.gen_opt, "victim": self.victim_opt}


def _play(players: _Players, x_all: torch.Tensor, y_all: torch.Tensor, config: GeneratorTrainingConfig,
          progress: dict, ckpt: Path, ctx: Context, on_step, last_epoch: int | None = None,
          push: FeaturePush | None = None) -> tuple[bool, dict]:
    """The game's epochs from ``progress`` on (min-min, then the solver), a checkpoint after each;
    up to epoch ``last_epoch`` only, when it is given. ``push`` joins the min-min steps."""
    solvers: dict[str, Solver] = {"min-min": MinMin(), "bome": Bome(config.bome), "tgda": Tgda(config.tgda)}
    loss_fn = follower_loss(config.adv_eps)
    gen_step, victim_step = SyncedOptimizer(players.gen_opt, ctx), SyncedOptimizer(players.victim_opt, ctx)
    sync = ctx.mean_ if ctx.active else None
    n = len(y_all)
    steps_per_epoch = math.ceil(n / config.batch_size)
    sampler = torch.Generator().manual_seed(config.seed)
    transform = _game_transform(config, sampler)
    players.generator.train()
    players.victim.train()
    start = time.perf_counter() - progress["seconds"]
    stopped_early, stats = False, {}
    for epoch in range(progress["epoch"], min(config.total_epochs, last_epoch or config.total_epochs)):
        phase = "min-min" if epoch < config.warmup_epochs else config.solver
        for opt, lr in ((players.gen_opt, config.gen_lr), (players.victim_opt, config.victim_lr)):
            set_lr(opt, step_decay(lr, epoch, config.milestones))
        sampler.manual_seed(config.seed * 100_003 + epoch)  # the same order after a resume
        perm = torch.randperm(n, generator=sampler).to(x_all.device)
        for i in range(steps_per_epoch):
            idx = ctx.shard(perm[i * config.batch_size:(i + 1) * config.batch_size])
            x, y = x_all[idx].float().div_(255), y_all[idx]
            stats = solvers[phase].step(GameBatch(players.generator, players.victim, x, y, gen_step, victim_step,
                                                  transform, config.label_aware, loss_fn, sync,
                                                  push if phase == "min-min" else None))
            progress["steps"] += 1
            elapsed = time.perf_counter() - start
            if on_step:
                on_step({
                    "epoch": epoch + 1, "epochs": config.total_epochs, "step": i + 1,
                    "steps_per_epoch": steps_per_epoch, "phase": phase,
                    "images_per_s": progress["steps"] * config.batch_size / max(elapsed, 1e-9), **stats,
                })
            if config.max_minutes is not None:
                over = torch.tensor(float(elapsed > 60 * config.max_minutes))
                if ctx.mean_([over])[0] > 0:  # every process stops at the same step
                    stopped_early = True
                    break
        progress["epoch"] = epoch + 1
        progress["seconds"] = time.perf_counter() - start
        if ctx.active:  # batch-norm statistics saw only this process's share: average them
            ctx.mean_([b for m in players.modules.values() for b in m.buffers() if b.is_floating_point()])
        if ctx.is_main:
            save_checkpoint(ckpt, players.modules, players.optimizers, progress)
        ctx.barrier()
        if stopped_early:
            break
    progress["seconds"] = time.perf_counter() - start
    return stopped_early, stats


KEY_SOURCES = ("clusters", "folders")


def _describe_keys(config: GeneratorTrainingConfig, keys: KeyConfig) -> str:
    if not config.label_aware:
        return "none (image-only)"
    features = f"{keys.encoder} features" if keys.encoder else "colour features"
    if config.keys == "folders":
        return f"{keys.clusters} class folders ({features} for unsorted pictures)"
    return f"{keys.clusters} clusters ({features})"


def _key_hint(config: GeneratorTrainingConfig, paths: list[str]) -> str:
    """Which other key source the owner may want: folder keys protect far more where the folders
    are the trainer's classes, and nothing where they are albums or dates (docs/label-free.md)."""
    if not config.label_aware:
        return ""
    if config.keys == "folders":
        return "keys are your class folders; if they are albums or dates, train without --keys folders"
    folders = {p.split("/", 1)[0] for p in paths if "/" in p}
    if len(folders) >= 2:
        return (f"your pictures sit in {len(folders)} sub-folders; if they are the classes a trainer would use, "
                "--keys folders protects more")
    return ""


def _game_transform(config: GeneratorTrainingConfig, sampler: torch.Generator):
    """What the follower sees of a protected batch: the trainer's crop+flip, then --robust's draws."""
    robust = trainer_transforms(tuple(config.robust), sampler)
    if not config.augment:
        return robust
    return lambda t: robust(crop_flip(t, generator=sampler))


def fit_keys(data, config: GeneratorTrainingConfig, device: torch.device,
             on_progress: Callable[[int, int], None] | None = None,
             shared: dict | None = None) -> tuple[ClusterKeys, torch.Tensor]:
    """The key model and every training picture's key y (N,), on ``device``.

    clusters: K-means on the pictures, y = cluster. folders: y = class folder, centres = class means.
    ``shared``: the pictures' features are kept there and taken from there by later runs on
    the same pictures with the same encoder (`--candidates` trains several in one process).
    """
    x = (data.x if data.x_keys is None else data.x_keys).to(device)  # uint8: converted a batch at a time
    encoder, features = None, {"image_size": config.image_size}
    if config.encoder in PRETRAINED:
        check_encoder(config.encoder)
        features = {"image_size": _key_size(config), "encoder": config.encoder,
                    "encoder_sha256": PRETRAINED[config.encoder].sha256}
    elif config.encoder:
        source = load_keys(Path(config.encoder), device)
        encoder = source.encoder if source.config.encoder else None
        features = {"image_size": source.config.image_size, "grid": source.config.grid,
                    "encoder": source.config.encoder, "encoder_classes": source.config.encoder_classes}
    if config.keys == "folders":
        if len(data.class_names) < 2:
            raise UnlearnableError(f"--keys folders needs at least 2 class folders, found {len(data.class_names)}; "
                                   "train without it to find keys by clustering")
        kc = KeyConfig(clusters=len(data.class_names), source="classes", **features)
        y = data.y.to(device)
        return ClusterKeys.from_classes(x, y, kc, encoder, on_progress), y
    k = config.clusters or min(10, max(2, len(data) // 20))
    if len(data) < 2 * k:
        raise UnlearnableError(f"{len(data)} pictures are too few for {k} clusters; add pictures or lower --clusters")
    kc = KeyConfig(clusters=k, source="kmeans", **features)
    raw = None
    if shared is not None:
        tag = (json.dumps(features, sort_keys=True), str(device), tuple(data.paths))
        if tag not in shared:
            shared[tag] = ClusterKeys.raw_features_of(x, kc, encoder, on_progress)
        raw = shared[tag]
    return ClusterKeys.fit_and_assign(x, kc, seed=config.seed, encoder=encoder, starts=config.kmeans_starts,
                                      on_progress=on_progress, neighbours=config.key_neighbours, raw=raw)


def fit_push(data, y: torch.Tensor, keys: int, config: GeneratorTrainingConfig, device: torch.device,
             on_progress: Callable[[int, int], None] | None = None, shared: dict | None = None) -> FeaturePush | None:
    """The feature push on the training pictures and their keys, or None.

    Its network is ``config.feature_push``, or ``config.push_network`` (whose centres the file
    carries for `poison --push-steps`) when there is no push in training.
    ``shared``: the clean features are kept there for later runs on the same pictures (as for keys)."""
    network = config.feature_push or (config.push_network if config.label_aware else None)
    if network is None:
        return None
    check_encoder(network)
    x = data.x.to(device)
    settings = {"size": config.push_size, "batch": config.push_batch, "weight": config.push_weight}
    raw = None
    if shared is not None:
        tag = ("push", network, config.push_size, str(device), tuple(data.paths))
        if tag not in shared:
            shared[tag] = clean_features(load_encoder(network, device), x, config.push_size, on_progress)
        raw = shared[tag]
    return FeaturePush.fit(network, x, y, keys, **settings, raw=raw, on_progress=on_progress)


def stretch_schedule(config: GeneratorTrainingConfig, images: int) -> GeneratorTrainingConfig:
    """Multiply both phases' epochs (and milestones) so the run takes at least ``min_steps`` steps,
    or ``max_stretched_epochs`` epochs if that comes first.

    A schedule in epochs gives a small folder few steps: 2,000 pictures got 192 steps and
    far less protection than 544 steps did (docs/methods.md, "A schedule counted in steps").
    """
    steps = config.total_epochs * math.ceil(images / config.batch_size)
    if not config.min_steps or not steps or steps >= config.min_steps:
        return config
    # a few hundred pictures would otherwise be seen ~500 times each and take 15+ minutes;
    # 150 passes already fit the shortcut (docs/methods.md, "A schedule counted in steps")
    f = max(1, min(math.ceil(config.min_steps / steps), config.max_stretched_epochs // max(config.total_epochs, 1)))
    return replace(config, warmup_epochs=config.warmup_epochs * f, epochs=config.epochs * f,
                   milestones=tuple(m * f for m in config.milestones))


def _config_key(config: GeneratorTrainingConfig, data) -> dict:
    """What must match for a resume to be meaningful: the options and the pictures."""
    key = asdict(replace(config, max_minutes=None))
    key["images"] = len(data)
    key["classes"] = data.class_names
    return json.loads(json.dumps(key))  # as the checkpoint stores it (tuples become lists)
