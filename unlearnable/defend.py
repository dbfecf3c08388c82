"""`defend`: run the known countermeasures against a protected folder and report, for each,
the accuracy a trainer would get, next to the same defense applied to the originals.

Uses `evaluate`'s training engine (:func:`train_victim`), never a second training loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from .data import load_training_and_test
from .scraper_labels import trainer_labels
from .distributed import SINGLE, Context
from .defenses.base import Defense
from .io.codec import encode_image
from .io.files import atomic_write_bytes
from .training.victim import VictimRecipe, train_victim


@dataclass(frozen=True)
class DefendConfig:
    recipe: VictimRecipe = VictimRecipe()
    seed: int = 0
    image_size: int = 32  # pixels
    export: Path | None = None  # write the purified protected pictures here, one folder per defense
    labels: Path | None = None  # CSV of relative path,class: the trainer's labels for a folder of any layout
    auto_labels: str = "clusters"  # with no labels: clusters (K-means of ImageNet features) or imagenet (a scraper's); scraper_labels.py
    labels_out: Path | None = None  # where labels made from the originals are written as a labels CSV


@dataclass
class DefenseRow:
    defense: str
    description: str
    protected_accuracy: float  # final clean-test accuracy after training on defended protected data
    protected_peak_accuracy: float  # best epoch (what early stopping would keep)
    clean_accuracy: float | None = None  # same defense, trained on the originals
    clean_peak_accuracy: float | None = None
    protection_kept: float | None = None  # clean_accuracy - protected_accuracy
    history: dict = field(default_factory=dict)


@dataclass
class DefendResult:
    rows: list[DefenseRow]
    train_images: int
    test_images: int
    recipe: dict
    labels: str = ""  # which labels the trainer used

    def to_dict(self) -> dict:
        return asdict(self)


def export_images(root: Path, name: str, x: torch.Tensor, paths: list[str]) -> None:
    for img, rel in zip(x, paths):
        atomic_write_bytes(Path(root) / name / (rel.rsplit(".", 1)[0] + ".png"), encode_image(img.permute(1, 2, 0), None))


def run_defenses(
    protected_dir: Path,
    test_dir: Path | None,
    clean_dir: Path | None,
    defenses: list[Defense],
    config: DefendConfig,
    device: torch.device,
    on_stage: Callable[[str, int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    ctx: Context = SINGLE,
    on_labels: Callable[[int, int], None] | None = None,
) -> DefendResult:
    size = config.image_size
    labels, labels_used = trainer_labels(config.labels, protected_dir, test_dir, clean_dir, device, on_labels,
                                          config.auto_labels, config.labels_out)
    protected, test, clean = load_training_and_test(protected_dir, test_dir, clean_dir, size, labels, config.seed)
    k = len(protected.class_names)
    rows = []
    for defense in defenses:
        recipe = replace(config.recipe, **defense.recipe_overrides())
        hook = defense.batch if defense.changes_batches else None
        runs = {}
        for which, data in (("protected", protected), ("clean", clean)):
            if data is None:
                continue
            x = defense.purify(data.x)
            if which == "protected" and config.export is not None and defense.changes_images and ctx.is_main:
                export_images(config.export, defense.name, x, data.paths)
            if on_stage:
                on_stage(f"{defense.name} on {which}", recipe.epochs)
            runs[which] = train_victim(x, data.y, test.x, test.y, recipe, k, config.seed, device, on_epoch, hook, ctx=ctx)
        row = DefenseRow(
            defense=defense.name, description=defense.description,
            protected_accuracy=runs["protected"].accuracy, protected_peak_accuracy=runs["protected"].peak_accuracy,
            history={w: [h["test_accuracy"] for h in r.history] for w, r in runs.items()},
        )
        if "clean" in runs:
            row.clean_accuracy = runs["clean"].accuracy
            row.clean_peak_accuracy = runs["clean"].peak_accuracy
            row.protection_kept = row.clean_accuracy - row.protected_accuracy
        rows.append(row)
    return DefendResult(rows=rows, train_images=len(protected), test_images=len(test), recipe=asdict(config.recipe),
                        labels=labels_used)


def save_defense_plot(result: DefendResult, protected_dir: Path, title: str) -> Path:
    """The matrix as grouped bars, ``<protected>.defenses.png`` beside the folder."""
    from .io.plot import plot_defenses

    path = Path(protected_dir).parent / f"{Path(protected_dir).resolve().name}.defenses.png"
    plot_defenses(path, [asdict(r) for r in result.rows], title)
    return path
