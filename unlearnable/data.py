"""Folders of pictures decoded once into uint8 tensors: labelled, unlabelled, or labelled by a CSV.

A labelled folder has one first-level sub-folder per class (the ImageFolder convention);
pictures deeper inside take the class of their first-level folder. An unlabelled folder may
have any layout. A labels CSV (``evaluate --labels``) names each picture's class. Pictures are brought to
``image_size`` x ``image_size`` by resizing the shorter side (bilinear, antialiased) and
centre-cropping; 32x32 CIFAR pictures pass through untouched.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import torch

from .errors import DataError
from .io.codec import decode_image
from .io.discovery import Skipped, check_folder, list_images, no_pictures
from .resize import fit_to_size


@dataclass
class LabelledImages:
    """x: uint8 (N, 3, S, S); y: int64 (N,); ``paths`` relative to the root, posix style."""

    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    paths: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    x_keys: torch.Tensor | None = None  # uint8 (N, 3, K, K): a larger copy for a key model, when asked for

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: torch.Tensor) -> "LabelledImages":
        idx = index.tolist()
        return LabelledImages(self.x[index], self.y[index], self.class_names, [self.paths[i] for i in idx], self.skipped)


def class_folders(root: Path) -> list[str]:
    root = check_folder(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


LabelSource = Union[str, dict]  # "folders" | "none" | {relative path without suffix: class name}


def read_label_file(path: Path) -> dict[str, str]:
    """A labels CSV: one ``relative/path.jpg,class`` per line (a ``path,label`` header is fine).

    Keys are the paths without their suffix, so the file written for the originals also
    labels their protected PNGs. Raises :class:`DataError` with the line at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"labels file {path} does not exist; write one line per picture: relative/path.jpg,class")
    labels: dict[str, str] = {}
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc})") from None
    for i, row in enumerate(rows, 1):
        if not row or (i == 1 and row[0].strip().lower() in ("path", "file", "filename")):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{path} line {i}: expected relative/path.jpg,class, got {','.join(row)!r}")
        labels[row[0].strip().replace("\\", "/").rsplit(".", 1)[0]] = row[1].strip()
    if len(set(labels.values())) < 2:
        raise DataError(f"{path} names fewer than 2 classes; a trainer needs at least 2")
    return labels


def _label_of(rel: str, labels: LabelSource, names: list[str]) -> str | None:
    if labels == "none":
        return None
    if labels == "folders":
        first = rel.split("/")[0]
        return first if "/" in rel and first in names else None
    return labels.get(rel.rsplit(".", 1)[0])


def load_pictures(
    root: Path,
    image_size: int = 32,
    labels: LabelSource = "folders",
    class_names: list[str] | None = None,
    limit: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
    strict: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    key_size: int | None = None,
) -> LabelledImages:
    """Decode a folder of any layout. ``class_names`` fixes the label order (e.g. a generator's).

    ``labels``: ``"folders"`` (a picture's class is its first-level sub-folder; pictures
    elsewhere are left out), ``"none"`` (every picture anywhere; y is -1 and there are no
    class names) or a dict from :func:`read_label_file` (every picture must have a label).
    ``fraction`` / ``limit`` keep a seeded random subset (the same for the same seed).
    ``key_size``: also keep a copy of each picture at that size (``x_keys``), from the same decode.
    """
    root = check_folder(root)
    names = _class_names(root, labels, class_names)
    unreadable: list[Skipped] = []
    keep = _labelled_files(root, labels, names, unreadable)
    if fraction is not None or limit is not None:
        n = len(keep)
        k = n if fraction is None else max(1, round(n * fraction))
        k = min(k, limit) if limit is not None else k
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values
        keep = [keep[i] for i in order.tolist()]
    xs, ys, paths, skipped, xk = [], [], [], list(unreadable), []
    for i, (path, rel, cls) in enumerate(keep):
        try:
            rgb = decode_image(path, at_least=2 * max(image_size, key_size or 0)).rgb
            xs.append(fit_to_size(rgb, image_size))
            if key_size:
                xk.append(fit_to_size(rgb, key_size))
            ys.append(-1 if cls is None else names.index(cls))
            paths.append(rel)
        except DataError as exc:
            if strict:
                raise DataError(f"{rel}: {exc} (stopped because of --strict)") from None
            skipped.append(Skipped(rel, str(exc)))
        if on_progress and (i % 256 == 0 or i == len(keep) - 1):
            on_progress(i + 1, len(keep))
    if not xs:
        raise DataError(f"none of the pictures in {root} could be read")
    return LabelledImages(torch.stack(xs), torch.tensor(ys, dtype=torch.long), list(names), paths, skipped,
                          torch.stack(xk) if key_size else None)


def _class_names(root: Path, labels: LabelSource, class_names: list[str] | None) -> list[str]:
    """The label order: the caller's, the class folders', the labels file's, or none."""
    if labels == "folders":
        names = class_names or class_folders(root)
        if not names:
            raise DataError(f"{root} has no class sub-folders; put each class's pictures in its own folder (cat/, dog/, ...)")
        return names
    if labels == "none":
        return []
    return class_names or sorted(set(labels.values()))


def _labelled_files(root: Path, labels: LabelSource, names: list[str],
                    unreadable: list[Skipped]) -> list[tuple[Path, str, str | None]]:
    """(path, relative path, class or None) of every picture ``labels`` keeps; a labels file
    must name every picture, and only classes in ``names``."""
    keep = [(p, r, _label_of(r, labels, names))
            for p, r in ((p, p.relative_to(root).as_posix()) for p in list_images(root, unreadable))]
    if isinstance(labels, dict):
        missing = [r for _, r, c in keep if c is None]
        if missing:
            raise DataError(f"the labels file has no line for {missing[0]} (and {len(missing) - 1} more pictures); "
                            "add them or remove those pictures")
        unknown = sorted({c for _, _, c in keep} - set(names))
        if unknown:
            raise DataError(f"the labels file names classes {unknown[:5]} that the test folder does not have")
    elif labels == "folders":
        keep = [k for k in keep if k[2] is not None]
    if not keep:
        raise no_pictures(root, unreadable, "in the class sub-folders of " if labels == "folders" else "in ")
    return keep


def load_labelled(root: Path, image_size: int = 32, class_names: list[str] | None = None, **kwargs) -> LabelledImages:
    """A labelled folder in the ImageFolder layout (see :func:`load_pictures`)."""
    return load_pictures(root, image_size, "folders", class_names, **kwargs)


def match_originals(protected: LabelledImages, clean_root: Path, image_size: int,
                    labels: LabelSource = "folders") -> LabelledImages:
    """Load the originals of ``protected`` from ``clean_root``, matched by relative path.

    Protected files are PNGs whatever the original suffix was, so the match is on the path
    without its suffix.
    """
    clean = load_pictures(clean_root, image_size, labels, class_names=protected.class_names)
    by_stem = {p.rsplit(".", 1)[0]: i for i, p in enumerate(clean.paths)}
    idx = [by_stem.get(p.rsplit(".", 1)[0]) for p in protected.paths]
    missing = [p for p, i in zip(protected.paths, idx) if i is None]
    if missing:
        raise DataError(f"--clean {clean_root} has no original for {missing[0]} (and {len(missing) - 1} more)")
    return clean.subset(torch.tensor(idx))


HOLDOUT = 0.2  # share of the originals held out as the test set when there is no test folder


def load_training_and_test(
    protected_dir: Path, test_dir: Path | None, clean_dir: Path | None, image_size: int, labels: LabelSource = "folders",
    seed: int = 0,
) -> tuple[LabelledImages, LabelledImages, LabelledImages | None]:
    """The protected folder, the test folder (same class folders) and, if given, the originals.

    ``labels`` is how the trainer labels the protected folder (and the originals): its class
    sub-folders, or a dict from :func:`read_label_file` for a folder of any layout. Without a
    test folder, a seeded :data:`HOLDOUT` share of the pictures is held out: the trainer
    learns from the protected versions of the rest and is tested on the originals of those.
    """
    if labels == "folders" and not class_folders(protected_dir):
        raise DataError(f"{protected_dir} has no class sub-folders: give the trainer's labels with --labels FILE "
                        "(one line relative/path.jpg,class per picture), or put each class's pictures in its own folder")
    if test_dir is None:
        return _held_out(protected_dir, clean_dir, image_size, labels, seed)
    test_classes = class_folders(test_dir)
    names = None if labels == "folders" else test_classes
    protected = load_pictures(protected_dir, image_size, labels, class_names=names)
    if test_classes != protected.class_names:
        raise DataError(
            f"class folders differ: {protected_dir} has {protected.class_names}, {test_dir} has {test_classes}"
        )
    test = load_labelled(test_dir, image_size, class_names=protected.class_names)
    clean = match_originals(protected, clean_dir, image_size, labels) if clean_dir is not None else None
    return protected, test, clean


def _held_out(protected_dir: Path, clean_dir: Path | None, image_size: int, labels: LabelSource,
              seed: int) -> tuple[LabelledImages, LabelledImages, LabelledImages]:
    if clean_dir is None:
        raise DataError("pass --test DIR (a labelled folder of clean test pictures), or --clean ORIGINALS to test "
                        f"on a held-out {HOLDOUT:.0%} of your own pictures")
    protected = load_pictures(protected_dir, image_size, labels)
    clean = match_originals(protected, clean_dir, image_size, labels)
    n = len(protected)
    n_test = round(HOLDOUT * n)
    if n_test < len(protected.class_names) or n - n_test < len(protected.class_names):
        raise DataError(f"{n} pictures are too few to hold out {HOLDOUT:.0%} as a test set for "
                        f"{len(protected.class_names)} classes; pass --test DIR")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_idx, train_idx = order[:n_test].sort().values, order[n_test:].sort().values
    return protected.subset(train_idx), clean.subset(test_idx), clean.subset(train_idx)
