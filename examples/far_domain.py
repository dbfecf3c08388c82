"""The built-in generator on pictures unlike anything it was trained on: does `poison` with no
`--gen` protect them, with the file's own keys and with keys fitted to the folder?

The built-in generator's keys are ten K-means centres found in CIFAR-10 pictures. A folder of
another kind of picture may fall into one or two of them, and then every picture gets nearly
the same pattern: no shortcut for the trainer's classes. This script builds such folders from
data that is made on the spot or ships inside a package (nothing is downloaded):

* ``digits``: scikit-learn's 1,797 handwritten digits (8 x 8 grey levels, 10 classes; the file
  ships inside scikit-learn: ``pip install scikit-learn``), enlarged to 32 x 32 pixels;
* ``shapes``: the package's own synthetic shapes (unlearnable/synthetic.py), 10 classes.

The pictures go into one flat folder with hashed names; a seeded fifth is held out as the
trainer's test set. For each key choice (`poison --fit-keys no` and `yes`; `--amplitude` as
given), `poison` protects
the folder with the built-in generator, and `evaluate` trains the small CNN on the protected
pictures with the true labels, once per seed (and once per seed on the originals). It prints the trainer's
accuracy, each seed and the mean, beside the originals'.

    python examples/far_domain.py --dataset digits --work /tmp/far_digits --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import cli, remove, write_json  # noqa: E402

from unlearnable.io.codec import encode_image  # noqa: E402
from unlearnable.io.files import atomic_write_bytes  # noqa: E402


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as uint8 RGB (N, 3, 32, 32) and labels (N,)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("the digits need scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous(), torch.tensor(d.target)


def shapes(per_class: int = 180) -> tuple[torch.Tensor, torch.Tensor]:
    from unlearnable.synthetic import synthetic_images

    return synthetic_images(10, per_class, size=32, seed=7)


def build(work: Path, x: torch.Tensor, y: torch.Tensor) -> tuple[Path, Path, Path]:
    """work/owner (flat, hashed names), work/labels.csv and work/test/<class>/ (a seeded fifth)."""
    owner, test, labels = work / "owner", work / "test", work / "labels.csv"
    if owner.exists():
        return owner, labels, test
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_test = len(y) // 5
    lines = []
    for rank, i in enumerate(order.tolist()):
        name = hashlib.sha256(f"far-{i}".encode()).hexdigest()[:16] + ".png"
        picture = x[i].permute(1, 2, 0).contiguous()
        if rank < n_test:
            path = test / f"class{int(y[i])}" / name
        else:
            path = owner / name
            lines.append(f"{name},class{int(y[i])}")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, encode_image(picture, None, "png"))
    labels.write_text("\n".join(lines) + "\n")
    return owner, labels, test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("digits", "shapes"), default="digits")
    ap.add_argument("--work", type=Path, required=True, help="working folder (outside the repository)")
    ap.add_argument("--seeds", default="0,1,2", help="trainer seeds, comma-separated")
    ap.add_argument("--epochs", type=int, default=None, help="trainer epochs (default: the quick recipe's)")
    ap.add_argument("--fit", default="no,yes", help="poison --fit-keys choices to measure, comma-separated")
    ap.add_argument("--gen", type=Path, default=None, help="a protection file instead of the built-in generator")
    ap.add_argument("--amplitude", default="generator", help="poison --amplitude: generator (the default) or full")
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args()
    x, y = digits() if args.dataset == "digits" else shapes()
    owner, labels, test = build(args.work, x, y)
    seeds = [int(s) for s in args.seeds.split(",")]
    extra = ["--epochs", str(args.epochs)] if args.epochs else []
    rows, clean = [], []
    for s in seeds:  # the originals once per seed: the same for every key choice
        r = cli("evaluate", str(owner), "--labels", str(labels), "--test", str(test), "--seed", str(s), *extra)
        clean.append(100 * r["accuracy"])
        print(f"originals, seed {s}: {clean[-1]:.2f}%", flush=True)
    for fit in args.fit.split(","):
        out = args.work / f"protected_fit_{fit}_{args.amplitude}"
        remove(out)
        gen = ["--gen", str(args.gen)] if args.gen else []
        cli("poison", str(owner), "--out", str(out), "--fit-keys", fit, "--amplitude", args.amplitude, *gen)
        protected = []
        for s in seeds:
            r = cli("evaluate", str(out), "--labels", str(labels), "--test", str(test), "--seed", str(s), *extra)
            protected.append(100 * r["accuracy"])
            print(f"fit-keys {fit}, seed {s}: protected {protected[-1]:.2f}%", flush=True)
        rows.append({"fit_keys": fit, "protected": protected, "clean": clean})
    print(f"\nThe built-in generator on {args.dataset}, --amplitude {args.amplitude} ({len(y) - len(y) // 5} training pictures, "
          f"{len(y) // 5} test), trainer with the true labels, seeds {args.seeds}")
    for r in rows:
        p, c = r["protected"], r["clean"]
        print(f"--fit-keys {r['fit_keys']:3}: protected {statistics.mean(p):.2f}% ({', '.join(f'{v:.2f}' for v in p)}), "
              f"originals {statistics.mean(c):.2f}%, protection {statistics.mean(c) - statistics.mean(p):.1f} points")
    write_json(args.json, {"dataset": args.dataset, "rows": rows})


if __name__ == "__main__":
    main()
