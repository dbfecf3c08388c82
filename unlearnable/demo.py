"""`demo`: the whole workflow on a synthetic picture set, in a few minutes on a CPU.

Builds ``train/`` (the owner's labelled photos), ``new_uploads/`` (pictures the generator
never sees) and ``test/``; trains a generator on ``train/``, protects ``new_uploads/``, then
trains a victim on the protected and on the original uploads and tests both on ``test/``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from .budget import Budget
from .errors import DataError
from .evaluate import EvaluationConfig, evaluate_protection
from .io.codec import decode_image, encode_image
from .io.files import atomic_write_bytes
from .poison import PoisonConfig, protect_folder
from .synthetic import synthetic_images, write_folder
from .training.generator import PRESETS, train_generator
from .training.victim import RECIPES

DEMO_CLASSES = [f"class{c}" for c in range(6)]
DEMO_SIZE = 16  # pixels: small pictures keep the demo within a few minutes on a CPU


@dataclass
class DemoResult:
    folder: str
    generator: str
    preview: str
    clean_accuracy: float
    protected_accuracy: float
    protected_peak_accuracy: float
    max_change_levels: int
    budget_levels: int
    generator_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def claim_empty_folder(root: Path) -> None:
    """Create ``root`` or accept it only if empty: the demo never deletes or overwrites anything.

    An earlier demo's folder is refused too: whatever is in it may have been changed or added
    to by the user since, so only a new folder is certain to hold nothing of theirs.
    """
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; pass a new folder for the demo, e.g. unlearnable-demo")
    if root.is_dir() and any(root.iterdir()):
        raise DataError(
            f"{root} is not empty; the demo only writes into a new or empty folder and never deletes anything: "
            f"pass another folder, e.g. `unlearnable demo {root.name}-2`"
        )
    root.mkdir(parents=True, exist_ok=True)


def make_demo_folders(root: Path, seed: int = 0) -> None:
    for name, per_class, offset in (("train", 200, 0), ("new_uploads", 200, 1), ("test", 100, 2)):
        x, y = synthetic_images(len(DEMO_CLASSES), per_class, DEMO_SIZE, seed * 10 + offset)
        write_folder(root / name, x, y, DEMO_CLASSES)


def write_preview(path: Path, originals: list[Path], protected: list[Path], levels: int) -> None:
    """One row per picture: original | protected | perturbation amplified to full range."""
    tiles = []
    for a, b in zip(originals, protected):
        orig = decode_image(a).rgb.float()
        prot = decode_image(b).rgb.float()
        diff = ((prot - orig) / (2 * max(levels, 1)) + 0.5).clamp(0, 1) * 255
        gap = torch.full((orig.shape[0], 2, 3), 255.0)
        tiles.append(torch.cat([orig, gap, prot, gap, diff], dim=1))
    sep = torch.full((2, tiles[0].shape[1], 3), 255.0)
    rows = []
    for t in tiles:
        rows += [t, sep]
    grid = torch.cat(rows[:-1], dim=0).round().to(torch.uint8)
    grid = grid.repeat_interleave(4, dim=0).repeat_interleave(4, dim=1)  # 4x zoom, nearest
    atomic_write_bytes(path, encode_image(label_columns(grid, levels), None))


def label_columns(grid: torch.Tensor, levels: int, band: int = 34) -> torch.Tensor:
    """The preview with a header naming its three columns and how much the third is amplified."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w, _ = grid.shape
    column = (w - 2 * 8) // 3  # three equal columns and two 2-pixel gaps, zoomed 4x
    img = Image.new("RGB", (w, h + band), "white")
    img.paste(Image.fromarray(grid.numpy()), (0, band))
    draw = ImageDraw.Draw(img)
    amplified = 127.5 / max(levels, 1)
    for i, text in enumerate(("original", "protected", f"change x{amplified:.0f}")):
        draw.text((i * (column + 8) + 4, 4), text, fill="black")
    draw.text((4, 18), f"grey = unchanged (budget {levels}/255)", fill="black")
    return torch.from_numpy(np.asarray(img).copy())


def run_demo(
    root: Path,
    eps: Budget,
    device: torch.device,
    seed: int = 0,
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> DemoResult:
    root = Path(root)
    claim_empty_folder(root)
    stage = on_stage or (lambda s: None)
    stage("making a synthetic labelled picture set")
    make_demo_folders(root, seed)
    stage("training a generator on train/")
    gen_path = root / "generator.safetensors"
    config = replace(
        PRESETS["cpu"], eps=eps.value, eps_text=eps.text, warmup_epochs=30, epochs=2, min_steps=0, batch_size=64,
        image_size=DEMO_SIZE, seed=seed, keys="folders",  # the demo's pictures come labelled
        robust=(),  # the settings the demo's figures were measured with (docs/results.md, "The demo")
    )
    trained = train_generator(root / "train", gen_path, config, device, on_step=on_step)
    stage("protecting new_uploads/ (pictures the generator never saw)")
    poisoned = protect_folder(root / "new_uploads", gen_path, root / "new_uploads_protected", PoisonConfig(), device)
    stage("training a victim on protected and on original uploads")
    config = EvaluationConfig(recipe=replace(RECIPES["quick"], epochs=15), seed=seed, image_size=DEMO_SIZE)
    result = evaluate_protection(
        root / "new_uploads_protected", root / "test", root / "new_uploads", config, device, on_epoch=on_epoch,
    )
    names = [f"{DEMO_CLASSES[i % len(DEMO_CLASSES)]}/{i:05d}" for i in range(len(DEMO_CLASSES))]
    preview = root / "preview.png"
    write_preview(
        preview,
        [root / "new_uploads" / f"{n}.png" for n in names],
        [root / "new_uploads_protected" / f"{n}.png" for n in names],
        eps.levels,
    )
    return DemoResult(
        folder=str(root), generator=str(gen_path), preview=str(preview),
        clean_accuracy=result.clean_accuracy, protected_accuracy=result.accuracy,
        protected_peak_accuracy=result.peak_accuracy, max_change_levels=poisoned.max_change_levels,
        budget_levels=poisoned.budget_levels, generator_seconds=trained.seconds,
    )
