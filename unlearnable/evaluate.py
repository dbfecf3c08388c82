"""`evaluate`: play the would-be trainer. Train fresh victims on protected pictures and test
them on clean ones.

Training sets, all decoded once into uint8 tensors:

* ``protected`` -- the protected folder, or with ``protect_ratio`` p < 1 a seeded subset of
  p of the protected pictures (the same ones every epoch) plus the clean originals of the
  rest (the REM paper's partial-protection setting), plus any ``clean_extra`` pictures;
* ``clean`` -- the originals of everything (when ``clean_dir`` is given);
* ``clean part`` -- only the clean part of the partial set, so the report shows what the
  protected pictures still contributed (REM paper, Table 2).

Each is trained with the same recipe for each seed of ``runs``; the report gives final and
peak accuracy, mean and standard deviation over runs, and the per-epoch history.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .data import LabelledImages, load_labelled, load_training_and_test
from .distributed import SINGLE, Context
from .errors import DataError
from .scraper_labels import trainer_labels
from .training.victim import VictimRecipe, train_victim


@dataclass(frozen=True)
class EvaluationConfig:
    recipe: VictimRecipe = VictimRecipe()
    seed: int = 0
    runs: int = 1  # repeated trainings with seeds seed, seed+1, ...
    image_size: int = 32  # pixels
    protect_ratio: float = 1.0  # share of the training pictures that are protected, 0-1
    clean_extra: Path | None = None  # further clean labelled pictures added to every training set
    labels: Path | None = None  # CSV of relative path,class: the trainer's labels for a folder of any layout
    auto_labels: str = "clusters"  # with no labels: clusters (K-means of ImageNet features) or imagenet (a scraper's); scraper_labels.py
    labels_out: Path | None = None  # where labels made from the originals are written as a labels CSV


@dataclass
class SettingResult:
    """One training set, trained ``runs`` times."""

    name: str
    train_images: int
    accuracy: float  # mean final clean-test accuracy, in [0, 1]
    accuracy_std: float
    peak_accuracy: float  # mean over runs of the best epoch's accuracy
    peak_accuracy_std: float
    runs: list[dict] = field(default_factory=list)


@dataclass
class EvaluationResult:
    accuracy: float
    peak_accuracy: float
    accuracy_std: float
    clean_accuracy: float | None
    clean_peak_accuracy: float | None
    accuracy_drop: float | None
    clean_part_accuracy: float | None
    protect_ratio: float
    train_images: int
    test_images: int
    recipe: dict
    seed: int
    settings: list[dict]
    labels: str = ""  # which labels the trainer used, e.g. the scraper's ImageNet classes

    def to_dict(self) -> dict:
        return asdict(self)


def _concat(*parts: LabelledImages | None) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [p for p in parts if p is not None and len(p)]
    return torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts])


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _training_sets(protected: LabelledImages, clean: LabelledImages | None, extra: LabelledImages | None,
                   ratio: float, seed: int) -> list[tuple[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The trainer's training sets, by name: the protected (or ``ratio`` protected, the rest
    originals), the originals, and the originals of the unprotected part alone."""
    n = len(protected)
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: round(ratio * n)]
    is_protected = torch.zeros(n, dtype=torch.bool)
    is_protected[chosen] = True
    sets: list[tuple[str, tuple[torch.Tensor, torch.Tensor]]] = []
    if ratio >= 1:
        sets.append(("protected", _concat(protected, extra)))
    else:
        mixed_x = torch.where(is_protected[:, None, None, None], protected.x, clean.x)
        mixed = LabelledImages(mixed_x, protected.y, protected.class_names, protected.paths)
        sets.append((f"{ratio:.0%} protected", _concat(mixed, extra)))
    if clean is not None:
        sets.append(("clean", _concat(clean, extra)))
        if ratio < 1 and (~is_protected).any():
            sets.append(("clean part only", _concat(clean.subset(torch.nonzero(~is_protected).flatten()), extra)))
    return sets


def evaluate_protection(
    protected_dir: Path,
    test_dir: Path | None,
    clean_dir: Path | None,
    config: EvaluationConfig,
    device: torch.device,
    on_stage: Callable[[str, int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    ctx: Context = SINGLE,
    on_labels: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Train ``config.recipe`` on each training set and test on ``test_dir`` (None: held-out originals)."""
    size = config.image_size
    ratio = config.protect_ratio
    if not 0 <= ratio <= 1:
        raise DataError(f"--protect-ratio {ratio} must be between 0 and 1")
    if ratio < 1 and clean_dir is None:
        raise DataError("--protect-ratio below 1 needs --clean DIR (the originals) to fill the unprotected part")
    labels, labels_used = trainer_labels(config.labels, protected_dir, test_dir, clean_dir, device, on_labels,
                                          config.auto_labels, config.labels_out)
    protected, test, clean = load_training_and_test(protected_dir, test_dir, clean_dir, size, labels, config.seed)
    k = len(protected.class_names)
    extra = load_labelled(config.clean_extra, size, class_names=protected.class_names) if config.clean_extra else None

    sets = _training_sets(protected, clean, extra, ratio, config.seed)
    results: list[SettingResult] = []
    for name, (x, y) in sets:
        runs = []
        for r in range(config.runs):
            if on_stage:
                on_stage(name if config.runs == 1 else f"{name} (run {r + 1}/{config.runs})", config.recipe.epochs)
            runs.append(train_victim(x, y, test.x, test.y, config.recipe, k, config.seed + r, device, on_epoch, ctx=ctx).to_dict())
        acc, acc_std = _stats([run["accuracy"] for run in runs])
        peak, peak_std = _stats([run["peak_accuracy"] for run in runs])
        results.append(SettingResult(name, len(y), acc, acc_std, peak, peak_std, runs))

    main = results[0]
    by_name = {r.name: r for r in results}
    clean_res = by_name.get("clean")
    part = by_name.get("clean part only")
    return EvaluationResult(
        accuracy=main.accuracy, peak_accuracy=main.peak_accuracy, accuracy_std=main.accuracy_std,
        clean_accuracy=clean_res.accuracy if clean_res else None,
        clean_peak_accuracy=clean_res.peak_accuracy if clean_res else None,
        accuracy_drop=(clean_res.accuracy - main.accuracy) if clean_res else None,
        clean_part_accuracy=part.accuracy if part else None,
        protect_ratio=ratio, train_images=main.train_images, test_images=len(test),
        recipe=asdict(config.recipe), seed=config.seed, settings=[asdict(r) for r in results], labels=labels_used,
    )


def training_kind(recipe: VictimRecipe, adv_text: str) -> str:
    """'standard training' or 'PGD adversarial training at 4/255', for titles."""
    return "standard training" if recipe.adv_eps == 0 else f"{recipe.adv_loss.upper()} adversarial training at {adv_text}"


def save_report(result: EvaluationResult, protected_dir: Path, report: Path | None, title: str) -> Path:
    """The JSON report (default ``<protected>.evaluation.json`` beside the folder) and its PNG curves."""
    import json

    from .io.files import atomic_write_bytes
    from .io.plot import ORIGINAL_LABEL, PROTECTED_LABEL, plot_curves

    report = report or protected_dir.parent / f"{protected_dir.resolve().name}.evaluation.json"
    atomic_write_bytes(report, json.dumps(result.to_dict(), indent=1).encode())
    names = {result.settings[0]["name"]: PROTECTED_LABEL, "clean": ORIGINAL_LABEL, "clean part only": "trained on the clean part only"}
    curves = {names.get(st["name"], st["name"]): [h["test_accuracy"] for h in st["runs"][0]["history"]]
              for st in result.settings}
    plot_curves(report.with_suffix(".png"), curves, title=f"accuracy on clean test pictures: {title}")
    return report
