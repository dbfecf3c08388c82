"""Several generators of one folder, and a check without labels that keeps the best.

Generators trained on the same folder with different seeds protect by very different amounts
(docs/label-free.md, "Measured: the 2,000-picture screening, three seeds"), and an owner
cannot measure it with labels they do not have. The check that ranked five seeds as the true
labels did is `evaluate --auto-labels clusters`'s
(docs/label-free.md, "A check without labels that predicts (2026-12-04)"): the originals are labelled by K-means clusters of another ImageNet network's
features than the keys', a stand-in for a trainer's classes; a small CNN is trained on four
fifths of the pictures as each candidate protects them and tested on the other fifth's
originals. The candidate that leaves it the lowest accuracy is kept. The originals' run
(the same training on the unprotected pictures) is shared by all candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .budget import apply_budget
from .data import load_pictures
from .errors import DataError
from .io.genfile import load_generator
from .scraper_labels import cluster_labels
from .training.victim import VictimRecipe, train_victim

CHECK_RECIPE = VictimRecipe(epochs=10)  # the recipe of the measurement that ranked the seeds
CHECK_PICTURES = 2000  # a larger folder is checked on a seeded subset of this many: the size that ranked the seeds
HELD_OUT = 5  # one picture in HELD_OUT is tested on, the rest trained on
OnStage = Callable[[str, int], None]  # (what is being trained, its epochs)


@dataclass
class CandidateCheck:
    accuracies: list[float]  # the check's trainer on each candidate's protection, in [0, 1]
    clean_accuracy: float  # the same trainer on the originals
    labels: str  # which labels the check used
    pictures: int  # pictures checked: four fifths trained on, one fifth tested on

    @property
    def best(self) -> int:
        return min(range(len(self.accuracies)), key=lambda i: self.accuracies[i])


@torch.no_grad()
def _protect(gen_path: Path, x: torch.Tensor, x_keys: torch.Tensor, device, batch: int = 256) -> torch.Tensor:
    """uint8 pictures (N, 3, S, S) as `poison` would write them with ``gen_path`` (keys from ``x_keys``)."""
    gen, info = load_generator(gen_path, device)
    levels = info.budget.levels
    out = []
    for b, k in zip(x.split(batch), x_keys.split(batch)):
        xb = b.to(device).float().div(255)
        y = gen.key(k.to(device).float().div(255))
        delta = gen(xb, y).cpu()  # as `poison` writes it by default (--amplitude generator)
        out.extend(apply_budget(p.permute(1, 2, 0), d, levels).permute(2, 0, 1) for p, d in zip(b, delta))
    return torch.stack(out)


def check_candidates(data_dir: Path, candidates: list[Path], device, image_size: int = 32,
                     recipe: VictimRecipe = CHECK_RECIPE, on_stage: OnStage | None = None,
                     on_epoch: Callable[[dict], None] | None = None,
                     on_labels: Callable[[int, int], None] | None = None) -> CandidateCheck:
    """The check's trainer accuracy for each candidate generator file, and on the originals."""
    labels, said = cluster_labels(data_dir, device, on_progress=on_labels, limit=CHECK_PICTURES)
    key_size = max(load_generator(p, "cpu")[1].config.keys.image_size for p in candidates)
    pictures = load_pictures(data_dir, image_size, labels="none", key_size=key_size, limit=CHECK_PICTURES)
    names = sorted(set(labels.values()))
    try:
        y = torch.tensor([names.index(labels[p.rsplit(".", 1)[0]]) for p in pictures.paths])
    except KeyError:
        raise DataError(f"{data_dir} changed while it was being checked; run the command again") from None
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    test, train = order[: len(y) // HELD_OUT], order[len(y) // HELD_OUT:]
    x, x_keys = pictures.x, pictures.x_keys

    def trained(name: str, train_x: torch.Tensor) -> float:
        if on_stage:
            on_stage(name, recipe.epochs)
        result = train_victim(train_x, y[train], x[test], y[test], recipe, len(names), 0, device, on_epoch)
        return result.accuracy

    clean = trained("the check on the originals", x[train])
    accuracies = [trained(f"the check on candidate {i + 1} of {len(candidates)}",
                          _protect(path, x[train], x_keys[train], device))
                  for i, path in enumerate(candidates)]
    return CandidateCheck(accuracies, clean, said, len(y))

