"""Does a fixed low-frequency pattern per key protect? No game: one random +-eps pattern per key.

    python examples/cell_patterns.py --photos flat2k --out cells8 [--block 8] [--luma] [--labels flat2k_labels.csv]
    unlearnable defend cells8 --test test2k --labels flat2k_labels.csv --clean flat2k --epochs 10 \\
        --defense none --defense grayscale --defense jpeg --defense iss

Each picture of a flat folder is fitted to ``--size`` pixels and takes the key of its nearest
K-means centre in the features of ``--encoder`` (the built-in generator's encoder by
default), or with ``--labels`` its true class (what no data owner has: the upper bound).
Key k gets one pattern, every ``--block`` x ``--block`` cell +eps or -eps at random
(seeded), in brightness only with ``--luma``. The pictures are written as PNG under the
same names (docs/trainer.md, "Training against the trainer's preprocessing": such patterns survive JPEG-10, and are not learned).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from unlearnable.budget import parse_budget
from unlearnable.data import load_pictures, read_label_file
from unlearnable.io.genfile import load_keys
from unlearnable.methods.base import small_cnn_encoder
from unlearnable.models.keys import ClusterKeys, KeyConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, required=True, help="flat folder of pictures")
    ap.add_argument("--out", type=Path, required=True, help="where to write the patterned pictures (PNG)")
    ap.add_argument("--block", type=int, default=8, help="pixels per side of a constant cell")
    ap.add_argument("--luma", action="store_true", help="one pattern for R, G and B")
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--encoder", type=Path, default=None, help="key model file (default: the shipped small-CNN key model)")
    ap.add_argument("--labels", type=Path, default=None, help="CSV name,class: key = true class instead of cluster")
    ap.add_argument("--eps", default="8/255")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    eps = parse_budget(a.eps).value
    pics = load_pictures(a.photos, a.size, read_label_file(a.labels) if a.labels else "none")
    x = pics.x.float() / 255
    if a.labels:
        key, k = pics.y, len(pics.class_names)
    else:
        source = load_keys(a.encoder or small_cnn_encoder())
        kc = KeyConfig(clusters=a.clusters, source="kmeans", encoder=source.config.encoder,
                       encoder_classes=source.config.encoder_classes, image_size=a.size)
        key = ClusterKeys.fit_kmeans(x, kc, seed=a.seed, encoder=source.encoder)(x)
        k = a.clusters
    g = torch.Generator().manual_seed(a.seed)
    cells = -(-a.size // a.block)
    signs = torch.sign(torch.rand(k, 1 if a.luma else 3, cells, cells, generator=g) - 0.5)
    pattern = signs.expand(-1, 3, -1, -1).repeat_interleave(a.block, 2).repeat_interleave(a.block, 3)[:, :, :a.size, :a.size]
    out = ((x + eps * pattern[key]).clamp(0, 1) * 255).round().byte()
    for rel, img in zip(pics.paths, out):
        target = (a.out / rel).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(target)
    print(f"{len(out)} pictures written to {a.out}; pictures per key: {torch.bincount(key, minlength=k).tolist()}")


if __name__ == "__main__":
    main()
