"""`evaluate`: train a fresh victim on protected pictures, test it on clean ones.

With the originals (``clean_dir``), the same recipe is also trained on them, so the report
shows what an unauthorized trainer would have got without the protection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .data import load_labelled, match_originals
from .errors import DataError
from .training.victim import VictimRecipe, VictimResult, train_victim


@dataclass
class EvaluationResult:
    accuracy: float  # final clean-test accuracy of the victim trained on protected data
    peak_accuracy: float
    clean_accuracy: float | None  # same recipe trained on the originals
    clean_peak_accuracy: float | None
    accuracy_drop: float | None  # clean_accuracy - accuracy
    train_images: int
    test_images: int
    recipe: dict
    seed: int
    protected_run: dict
    clean_run: dict | None

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_protection(
    protected_dir: Path,
    test_dir: Path,
    clean_dir: Path | None,
    recipe: VictimRecipe,
    seed: int,
    device: torch.device,
    image_size: int = 32,
    on_stage: Callable[[str, int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> EvaluationResult:
    """Train ``recipe`` on ``protected_dir`` (and on ``clean_dir``) and test on ``test_dir``."""
    protected = load_labelled(protected_dir, image_size)
    test = load_labelled(test_dir, image_size)
    if test.class_names != protected.class_names:
        raise DataError(
            f"class folders differ: {protected_dir} has {protected.class_names}, {test_dir} has {test.class_names}"
        )
    k = len(protected.class_names)
    if on_stage:
        on_stage("protected", recipe.epochs)
    run = train_victim(protected.x, protected.y, test.x, test.y, recipe, k, seed, device, on_epoch)
    clean_run: VictimResult | None = None
    if clean_dir is not None:
        clean = match_originals(protected, clean_dir, image_size)
        if on_stage:
            on_stage("clean", recipe.epochs)
        clean_run = train_victim(clean.x, clean.y, test.x, test.y, recipe, k, seed, device, on_epoch)
    return EvaluationResult(
        accuracy=run.accuracy, peak_accuracy=run.peak_accuracy,
        clean_accuracy=clean_run.accuracy if clean_run else None,
        clean_peak_accuracy=clean_run.peak_accuracy if clean_run else None,
        accuracy_drop=(clean_run.accuracy - run.accuracy) if clean_run else None,
        train_images=len(protected), test_images=len(test), recipe=asdict(recipe), seed=seed,
        protected_run=run.to_dict(), clean_run=clean_run.to_dict() if clean_run else None,
    )
