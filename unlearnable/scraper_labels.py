"""Labels as a scraper makes them: an ImageNet classifier's top-1 class, for owners with none.

A data owner cannot check their protection with a trainer's labels they do not have. A
scraper that takes pictures without labels names them automatically, for example with an
ImageNet classifier; the ImageNet encoder that ships for the keys
(:mod:`unlearnable.models.pretrained`) is such a classifier. This labels the owner's
originals with its top-1 class at ``size`` pixels, keeps the ``max_classes`` most frequent
classes that have at least ``min_share`` of the pictures each, and groups every other picture
under ``other``, so that each named class has enough pictures to learn and to test.

Where the classifier names few of the pictures (small ones: most fall in ``other``), the
labels can instead be clusters of its features (:func:`cluster_labels`): K-means on what the
network sees, a stand-in for a trainer's classes that follows content. On the CIFAR-10
screening that check ranked five generators' protection nearly as the true labels did
(docs/label-free.md, "A check without labels that predicts").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .data import LabelSource, class_folders, load_pictures, read_label_file
from .errors import DataError
from .io.discovery import list_images
from .io.files import atomic_write_bytes
from .resize import fit_center
from .models.keys import kmeans
from .models.pretrained import PRETRAINED, load_encoder

CLASSIFIER = "efficientnet-lite0"
OTHER = "other"
MIN_PICTURES = 5  # a class named by the classifier keeps at least this many pictures
CLUSTERS = 10  # classes of the cluster labelling, fewer on a small folder
CLUSTER_PICTURES = 20  # pictures per cluster at least, on average, to train and to test on
AUTO_LABELS = ("clusters", "imagenet", "folders")


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
            said += (f"; most pictures fall in '{OTHER}', so this check says little: try --auto-labels clusters, "
                     "or give the trainer's labels with --labels FILE")
        return said


def imagenet_class_name(index: int) -> str:
    from timm.data import ImageNetInfo  # timm ships the 1,000 class names; imported only here

    return ImageNetInfo().index_to_description(index).split(",")[0].strip()


def _through_classifier(clean_dir: Path, device: torch.device, size: int, head, batch: int,
                        on_progress: Callable[[int, int], None] | None, limit: int | None = None):
    """Every picture under ``clean_dir`` at ``size`` pixels, and ``head(encoder, pictures)`` of each, in batches.

    Progress is counted in pictures: reading them is the first half, the network the second.
    ``limit``: at most that many, the seeded subset :func:`load_pictures` keeps for it.
    """
    report = on_progress or (lambda done, total: None)
    listed = [0]

    def reading(done: int, total: int) -> None:
        listed[0] = total
        report(done // 2, total)

    pictures = load_pictures(clean_dir, size, "none", limit=limit, on_progress=reading)
    enc = load_encoder(CLASSIFIER, device)
    n, total, found = len(pictures), listed[0] or len(pictures), []
    with torch.no_grad():
        for b in pictures.x.split(batch):
            found.append(head(enc, fit_center(b.to(device).float() / 255, size)).cpu())
            report(total // 2 + (total - total // 2) * min(len(found) * batch, n) // n, total)
    return pictures, torch.cat(found)


def scraper_labels(clean_dir: Path, device: torch.device, size: int = 128, max_classes: int = 10,
                   min_share: float = 0.01, on_progress: Callable[[int, int], None] | None = None) -> ScraperLabels:
    """Label every picture under ``clean_dir`` (any layout) by the classifier's top-1 class."""
    pictures, top1 = _through_classifier(clean_dir, device, size, lambda enc, x: enc.logits(x).argmax(1), 128,
                                         on_progress)
    n = len(pictures)
    need = max(MIN_PICTURES, round(min_share * n))
    frequent = [c for c, k in Counter(top1.tolist()).most_common(max_classes) if k >= need]
    names = {c: imagenet_class_name(c) for c in frequent}
    label_of = [names.get(c, OTHER) for c in top1.tolist()]
    counts = Counter(label_of)
    if len(frequent) < 2 and (len(frequent) < 1 or counts[OTHER] < need):
        raise DataError(f"{n} pictures give fewer than 2 ImageNet classes with {need} pictures each to train and test "
                        "a trainer on; try --auto-labels clusters, add pictures, or give the trainer's labels with --labels FILE")
    labels = {rel.rsplit(".", 1)[0]: name for rel, name in zip(pictures.paths, label_of)}
    return ScraperLabels(labels, dict(counts.most_common()), CLASSIFIER)


def cluster_labels(clean_dir: Path, device: torch.device, seed: int = 0,
                   on_progress: Callable[[int, int], None] | None = None,
                   limit: int | None = None) -> tuple[dict[str, str], str]:
    """Label every picture under ``clean_dir`` by its K-means cluster of the classifier's features.

    ``limit``: only the seeded subset of that many that :func:`load_pictures` keeps with the same
    ``limit`` (a caller that trains on that subset need not run the network on the rest).

    The pooled features at the network's key size, centred and scaled to unit length, K =
    :data:`CLUSTERS` (fewer where the folder has under :data:`CLUSTER_PICTURES` pictures a
    cluster). Returns the labels (as :func:`read_label_file` gives them) and a line saying so.
    """
    # small batches: the network's activations at key size stay in the CPU's caches (as for the keys)
    pictures, f = _through_classifier(clean_dir, device, PRETRAINED[CLASSIFIER].key_size, lambda enc, x: enc.embed(x),
                                      16, on_progress, limit)
    n = len(pictures)
    k = min(CLUSTERS, n // CLUSTER_PICTURES)
    if k < 2:
        raise DataError(f"{n} pictures are too few to cluster into classes to train and test a trainer on (at least "
                        f"{2 * CLUSTER_PICTURES} are needed); add pictures, or give the trainer's labels with --labels FILE")
    f = torch.nn.functional.normalize(f - f.mean(0), dim=1)
    cluster = torch.cdist(f, kmeans(f, k, seed=seed)).argmin(1).tolist()
    labels = {rel.rsplit(".", 1)[0]: f"cluster {c}" for rel, c in zip(pictures.paths, cluster)}
    sizes = ", ".join(f"{name} {m}" for name, m in Counter(labels.values()).most_common())
    return labels, (f"labels: {k} K-means clusters of {CLASSIFIER}'s features of the originals, a stand-in for a "
                    f"trainer's classes ({sizes})")


def write_labels(labels: dict[str, str], clean_dir: Path, out: Path) -> None:
    """Labels made from the originals as a labels CSV (``path,label``, a line per original), for ``--labels``."""
    import csv
    import io

    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\n")
    rows.writerow(["path", "label"])
    for path in list_images(clean_dir):
        rel = path.relative_to(clean_dir).as_posix()
        if rel.rsplit(".", 1)[0] in labels:
            rows.writerow([rel, labels[rel.rsplit(".", 1)[0]]])
    atomic_write_bytes(out, text.getvalue().encode("utf-8"))


def trainer_labels(labels_file: Path | None, protected_dir: Path, test_dir: Path | None, clean_dir: Path | None,
                   device: torch.device, on_progress: Callable[[int, int], None] | None = None,
                   auto: str = "clusters", write_to: Path | None = None) -> tuple[LabelSource, str]:
    """How `evaluate` and `defend` label the training pictures, and a line saying so.

    A labels CSV if given; else, with a ``--test`` folder or no originals, the class
    sub-folders (the test pictures need classes of the same names). Else labels made from the
    originals, whatever their layout: ``auto`` ``clusters`` (the default) or ``imagenet``, a
    scraper's; ``folders`` takes the first-level sub-folders as the classes. Sub-folders are
    not taken as classes by default: an owner's are albums or dates more often than a
    trainer's classes, and where they are classes the clusters rank protections as the true
    labels do (docs/trainer.md, "`evaluate`: what an unauthorized trainer gets"). Labels made
    from the originals are also written to ``write_to`` as a labels CSV, for ``--labels``.
    """
    unused = "" if auto == "clusters" else f" (--auto-labels {auto} is for folders with no labels at all, so it is not used)"
    if labels_file:
        return read_label_file(labels_file), f"labels: {labels_file}{unused}"
    if test_dir is not None or clean_dir is None:
        return "folders", f"labels: the class sub-folders{unused if auto == 'imagenet' else ''}"
    folders = class_folders(protected_dir)
    if auto == "folders":
        if not folders:
            raise DataError(f"--auto-labels folders: {protected_dir} has no sub-folders to take as classes; leave the "
                            "option out to label the pictures by clusters, or give the trainer's labels with --labels FILE")
        return "folders", "labels: the class sub-folders (--auto-labels folders)"
    hint = (f"; the pictures sit in {len(folders)} sub-folders: if they are a trainer's classes, --auto-labels folders "
            "checks with them" if folders else "")
    if auto == "clusters":
        labels, said = cluster_labels(clean_dir, device, on_progress=on_progress)
    else:
        scraped = scraper_labels(clean_dir, device, on_progress=on_progress)
        labels, said = scraped.labels, scraped.describe()
    if write_to is not None:
        write_labels(labels, clean_dir, write_to)
        hint += f"; written to {write_to}: --labels {write_to} uses them again, without the network"
    return labels, said + hint
