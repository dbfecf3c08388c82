"""Labels as a scraper makes them: an ImageNet classifier's top-1 class, for owners with none.

A data owner cannot check their protection with a trainer's labels they do not have. A
scraper that takes pictures without labels names them automatically, for example with an
ImageNet classifier; the ImageNet encoder that ships for the keys
(:mod:`unlearnable.models.pretrained`) is such a classifier. This labels the owner's
originals with its top-1 class at ``size`` pixels, keeps the ``max_classes`` most frequent
classes that have at least ``min_share`` of the pictures each, and groups every other picture
under ``other``, so that each named class has enough pictures to learn and to test.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .data import LabelSource, class_folders, load_pictures, read_label_file
from .errors import DataError
from .resize import fit_center
from .models.pretrained import load_encoder

CLASSIFIER = "efficientnet-lite0"
OTHER = "other"
MIN_PICTURES = 5  # a class named by the classifier keeps at least this many pictures


@dataclass(frozen=True)
class ScraperLabels:
    labels: dict[str, str]  # relative path without suffix -> class name, as read_label_file gives
    counts: dict[str, int]  # class name -> pictures, most frequent first
    classifier: str

    def describe(self) -> str:
        classes = ", ".join(f"{name} {n}" for name, n in self.counts.items())
        said = (f"labels: {self.classifier}'s top-1 ImageNet class of each original, as a scraper would label them; "
                f"{len(self.counts)} classes ({classes})")
        if self.counts.get(OTHER, 0) > sum(self.counts.values()) / 2:
            said += (f"; most pictures fall in '{OTHER}', so this check says little: give the trainer's labels "
                     "with --labels FILE for a real one")
        return said


def imagenet_class_name(index: int) -> str:
    from timm.data import ImageNetInfo  # timm ships the 1,000 class names; imported only here

    return ImageNetInfo().index_to_description(index).split(",")[0].strip()


def scraper_labels(clean_dir: Path, device: torch.device, size: int = 128, max_classes: int = 10,
                   min_share: float = 0.01, on_progress: Callable[[int, int], None] | None = None) -> ScraperLabels:
    """Label every picture under ``clean_dir`` (any layout) by the classifier's top-1 class."""
    report = on_progress or (lambda done, total: None)
    pictures = load_pictures(clean_dir, size, "none", on_progress=lambda d, t: report(d, 2 * t))  # reading: half
    enc = load_encoder(CLASSIFIER, device)
    n, found = len(pictures), []
    with torch.no_grad():
        for b in pictures.x.split(128):
            found.append(enc.logits(fit_center(b.to(device).float() / 255, size)).argmax(1).cpu())
            report(n + min(len(found) * 128, n), 2 * n)  # classifying: the other half
    top1 = torch.cat(found)
    need = max(MIN_PICTURES, round(min_share * n))
    frequent = [c for c, k in Counter(top1.tolist()).most_common(max_classes) if k >= need]
    names = {c: imagenet_class_name(c) for c in frequent}
    label_of = [names.get(c, OTHER) for c in top1.tolist()]
    counts = Counter(label_of)
    if len(frequent) < 2 and (len(frequent) < 1 or counts[OTHER] < need):
        raise DataError(f"{n} pictures give fewer than 2 ImageNet classes with {need} pictures each to train and test "
                        "a trainer on; add pictures, or give the trainer's labels with --labels FILE")
    labels = {rel.rsplit(".", 1)[0]: name for rel, name in zip(pictures.paths, label_of)}
    return ScraperLabels(labels, dict(counts.most_common()), CLASSIFIER)


def trainer_labels(labels_file: Path | None, protected_dir: Path, test_dir: Path | None, clean_dir: Path | None,
                   device: torch.device, on_progress: Callable[[int, int], None] | None = None) -> tuple[LabelSource, str]:
    """How `evaluate` and `defend` label the training pictures, and a line saying so.

    A labels CSV if given; else class sub-folders where the protected folder has them; else,
    with originals to hold a test fifth out of (``--clean``, no ``--test``), a scraper's labels.
    """
    if labels_file:
        return read_label_file(labels_file), f"labels: {labels_file}"
    if class_folders(protected_dir) or test_dir is not None or clean_dir is None:
        return "folders", "labels: the class sub-folders"
    scraped = scraper_labels(clean_dir, device, on_progress=on_progress)
    return scraped.labels, scraped.describe()
