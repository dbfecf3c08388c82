"""Labelled image folders decoded once into uint8 tensors.

A labelled folder has one first-level sub-folder per class (the ImageFolder convention);
pictures deeper inside take the class of their first-level folder. Pictures are brought to
``image_size`` x ``image_size`` by resizing the shorter side (bilinear, antialiased) and
centre-cropping; 32x32 CIFAR pictures pass through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import DataError
from .io.images import Skipped, decode_image, list_images


@dataclass
class LabelledImages:
    """x: uint8 (N, 3, S, S); y: int64 (N,); ``paths`` relative to the root, posix style."""

    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    paths: list[str]
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: torch.Tensor) -> "LabelledImages":
        idx = index.tolist()
        return LabelledImages(self.x[index], self.y[index], self.class_names, [self.paths[i] for i in idx], self.skipped)


def fit_to_size(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> uint8 (3, size, size): shorter side resized to ``size``, centre crop."""
    img = rgb.permute(2, 0, 1)
    h, w = img.shape[1:]
    if (h, w) == (size, size):
        return img.contiguous()
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = F.interpolate(img[None].float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)[0]
    top, left = (nh - size) // 2, (nw - size) // 2
    return img[:, top:top + size, left:left + size].round().clamp(0, 255).to(torch.uint8)


def class_folders(root: Path) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist; check the path")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_labelled(
    root: Path,
    image_size: int = 32,
    class_names: list[str] | None = None,
    limit: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
    strict: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> LabelledImages:
    """Decode a labelled folder. ``class_names`` fixes the label order (e.g. a generator's).

    ``fraction`` / ``limit`` keep a seeded random subset (the same for the same seed).
    """
    root = Path(root)
    names = class_names or class_folders(root)
    if not names:
        raise DataError(f"{root} has no class sub-folders; put each class's pictures in its own folder (cat/, dog/, ...)")
    files = [p for p in list_images(root) if len(p.relative_to(root).parts) > 1]
    rels = [p.relative_to(root).as_posix() for p in files]
    keep = [(p, r) for p, r in zip(files, rels) if r.split("/")[0] in names]
    if not keep:
        raise DataError(f"no pictures found in the class sub-folders of {root}")
    if fraction is not None or limit is not None:
        n = len(keep)
        k = n if fraction is None else max(1, round(n * fraction))
        k = min(k, limit) if limit is not None else k
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values
        keep = [keep[i] for i in order.tolist()]
    xs, ys, paths, skipped = [], [], [], []
    for i, (path, rel) in enumerate(keep):
        try:
            xs.append(fit_to_size(decode_image(path).rgb, image_size))
            ys.append(names.index(rel.split("/")[0]))
            paths.append(rel)
        except DataError as exc:
            if strict:
                raise DataError(f"{rel}: {exc} (stopped because of --strict)") from None
            skipped.append(Skipped(rel, str(exc)))
        if on_progress and (i % 256 == 0 or i == len(keep) - 1):
            on_progress(i + 1, len(keep))
    if not xs:
        raise DataError(f"none of the pictures in {root} could be read")
    return LabelledImages(torch.stack(xs), torch.tensor(ys, dtype=torch.long), list(names), paths, skipped)


def match_originals(protected: LabelledImages, clean_root: Path, image_size: int) -> LabelledImages:
    """Load the originals of ``protected`` from ``clean_root``, matched by relative path.

    Protected files are PNGs whatever the original suffix was, so the match is on the path
    without its suffix.
    """
    clean = load_labelled(clean_root, image_size, class_names=protected.class_names)
    by_stem = {p.rsplit(".", 1)[0]: i for i, p in enumerate(clean.paths)}
    idx = [by_stem.get(p.rsplit(".", 1)[0]) for p in protected.paths]
    missing = [p for p, i in zip(protected.paths, idx) if i is None]
    if missing:
        raise DataError(f"--clean {clean_root} has no original for {missing[0]} (and {len(missing) - 1} more)")
    return clean.subset(torch.tensor(idx))


def load_training_and_test(
    protected_dir: Path, test_dir: Path, clean_dir: Path | None, image_size: int
) -> tuple[LabelledImages, LabelledImages, LabelledImages | None]:
    """The protected folder, the test folder (same class folders) and, if given, the originals."""
    protected = load_labelled(protected_dir, image_size)
    test_classes = class_folders(test_dir)
    if test_classes != protected.class_names:
        raise DataError(
            f"class folders differ: {protected_dir} has {protected.class_names}, {test_dir} has {test_classes}"
        )
    test = load_labelled(test_dir, image_size, class_names=protected.class_names)
    clean = match_originals(protected, clean_dir, image_size) if clean_dir is not None else None
    return protected, test, clean
