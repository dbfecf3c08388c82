"""Train the built-in generator (``unlearnable/generators/default.safetensors``) from CIFAR-10.

    tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C /tmp/cifar10
    python examples/train_default_generator.py --data /tmp/cifar10

Through the real CLI, on CIFAR-10 classes 0-4 only (airplane, automobile, bird, cat, deer),
so that classes 5-9 stay content it has never seen (docs/results.md measures its protection
there, `examples/label_free_benchmark.py --cases D`): ``unlearnable train-generator`` on
training pictures 0-999 of classes 0-4 (5,000) as one flat folder with no labels, default
settings (keys: K-means clusters of the ImageNet encoder's features, which exist for any
picture: a new one takes its nearest centre).

``--small-cnn-out FILE`` makes the small-CNN variant (the file shipped before 2026-12-02): ``unlearnable
train-encoder`` on training pictures 1000-4999 of classes 0-4 (20,000, labelled), then the
generator keyed by it (``--encoder small-cnn`` reads that key model from the built-in file).

The pictures themselves are never copied into the repository.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchlib import cli, remove

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_free_benchmark import flat_copy, pictures_of  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "unlearnable" / "generators" / "default.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="extracted CIFAR-10 folder (with train/ and test/)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-default-generator"), help="scratch folder")
    ap.add_argument("--out", type=Path, default=DEFAULT, help="where to write the generator")
    ap.add_argument("--encoder-epochs", type=int, default=15, help="small CNN encoder training epochs")
    ap.add_argument("--seed", type=int, default=0, help="seed for both steps")
    ap.add_argument("--encoder", default=None, help="train-generator --encoder (a name or a file; default: train-generator's own)")
    ap.add_argument("--small-cnn-out", type=Path, default=None, help="first train the small CNN key encoder, write it here, and key the generator by it")
    ap.add_argument("--train-args", default="", help='extra train-generator options, e.g. "--robust none"')
    args = ap.parse_args()

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    classes = sorted(p.name for p in (args.data / "train").iterdir() if p.is_dir())[:5]
    labelled = work / "encoder_pictures"
    if args.small_cnn_out is not None and not labelled.exists():
        for src, cls in pictures_of(args.data / "train", classes, 4000, skip=1000):
            (labelled / cls).mkdir(parents=True, exist_ok=True)
            (labelled / cls / src.name).symlink_to(src.resolve())
    owner = work / "owner_flat"
    flat_copy(pictures_of(args.data / "train", classes, 1000), owner, seed=args.seed)

    if args.small_cnn_out is not None:
        remove(args.small_cnn_out)
        enc = cli("train-encoder", str(labelled), "--out", str(args.small_cnn_out), "--epochs", str(args.encoder_epochs),
                  "--seed", str(args.seed))
        print(f"small CNN encoder: {enc['images']} pictures of {', '.join(classes)}, held-out accuracy "
              f"{enc['holdout_accuracy']:.2%}, {enc['seconds'] / 60:.1f} min -> {args.small_cnn_out}")
    tmp = work / "default.safetensors"
    remove(tmp, Path(str(tmp) + ".ckpt"))
    encoder = str(args.small_cnn_out) if args.small_cnn_out is not None else args.encoder
    gen = cli("train-generator", str(owner), *(("--encoder", encoder) if encoder else ()), "--out", str(tmp),
              "--seed", str(args.seed), "--candidates", "1", *args.train_args.split())  # one generator, as shipped
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp, args.out)
    print(f"generator: {gen['images']} pictures, {gen['steps']} steps, {gen['seconds'] / 60:.1f} min -> {args.out} "
          f"({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
