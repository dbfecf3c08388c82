"""Screenings for issue "The trainer fine-tunes a pretrained network", on a screening folder.

    python examples/label_free_benchmark.py --data /tmp/cifar10 --work /tmp/scr/k10_s0 --per-class 200 \
        --test-per-class 200 --cases B --epochs 10 --train-args "--warmup-epochs 20 --epochs 4 --seed 0"
    python examples/trainer_screening.py --work /tmp/scr/k10_s0 --parts follower,check [--json out.json]

It reuses what the first command left in ``--work``: the owner's flat folder ``B_photos``, the
trainer's labels ``B_labels.csv``, the test folder ``test10`` and the label-free default's
protected copy ``B_protected``.

* ``follower``: trains a generator whose follower in the game is the shipped ImageNet network
  with a trained last layer on frozen features (``--victim efficientnet-lite0-probe``), protects
  the folder with it, and evaluates both protections with the three trainers: from scratch
  (``quick``), linear probe and full fine-tuning (``pretrained``), each beside the originals.
* ``check``: trains a colour-key generator (``--train-args``) and compares, for no protection,
  the built-in generator (made on CIFAR-10 classes 0-4), the colour keys and the
  label-free default, the trainer with the true labels against
  the label-free checks (``evaluate PROTECTED --clean ORIGINALS``, labels by the shipped
  classifier, and the same with ``--auto-labels clusters``, labels by K-means clusters of its
  features), and against the scraper's labels without ``other`` (only the pictures the
  classifier named): do they rank the protections alike?

Nothing derived from the images is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from benchlib import cli, remove

from unlearnable.scraper_labels import OTHER, scraper_labels


def protect(work: Path, name: str, train_args: list[str] | None) -> Path:
    """Train a generator on the owner's folder (reused if present) and protect the folder with
    it (`poison` finishes an interrupted output and skips what is done); ``train_args`` None:
    the built-in generator."""
    gen, out = work / f"gen_{name}.safetensors", work / f"{name}_protected"
    if train_args is not None and not gen.exists():
        cli("train-generator", str(work / "B_photos"), "--out", str(gen), *train_args)
    given = [] if train_args is None else ["--gen", str(gen)]
    cli("poison", str(work / "B_photos"), *given, "--out", str(out), "--batch-size", "256")
    return out


def true_labels(work: Path, protected: Path, recipe: str, epochs: list[str]) -> dict:
    return cli("evaluate", str(protected), "--test", str(work / "test10"), "--labels", str(work / "B_labels.csv"),
               "--clean", str(work / "B_photos"), "--recipe", recipe, *epochs)


def row(rows: list[dict], part: str, protection: str, trainer: str, result: dict) -> None:
    rows.append({"part": part, "protection": protection, "trainer": trainer, "protected_accuracy": result["accuracy"],
                 "clean_accuracy": result["clean_accuracy"], "minutes": result["_wall_seconds"] / 60,
                 "labels": result["labels"]})
    r = rows[-1]
    print(f"{part:9} {protection:22} {trainer:14} {r['protected_accuracy']:8.2%} {r['clean_accuracy']:8.2%} "
          f"{r['clean_accuracy'] - r['protected_accuracy']:+7.2%}  {r['minutes']:.1f} min", flush=True)


def named_only(work: Path, folders: dict[str, Path]) -> tuple[dict[str, Path], Path, Path]:
    """The check's labels without ``other``: symlinked subsets of the pictures the classifier
    named, the originals' subset and a labels CSV for them."""
    named = {k: v for k, v in scraper_labels(work / "B_photos", torch.device("cpu")).labels.items() if v != OTHER}
    base = work / "named"

    def subset(src: Path, dst: Path) -> Path:
        dst.mkdir(parents=True, exist_ok=True)
        for p in src.iterdir():
            if p.stem in named and not (dst / p.name).exists():
                os.symlink(p.resolve(), dst / p.name)
        return dst

    base.mkdir(parents=True, exist_ok=True)
    labels = base / "labels.csv"
    labels.write_text("".join(f"{k},{v}\n" for k, v in named.items()))
    subsets = {name: subset(folder, base / name.replace(" ", "_")) for name, folder in folders.items()}
    return subsets, subset(work / "B_photos", base / "originals"), labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="a label_free_benchmark.py --cases B work folder")
    ap.add_argument("--parts", default="follower,check", help="follower, check or both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10, help="from-scratch trainer's epochs (as the screening)")
    ap.add_argument("--follower-args", default="--warmup-epochs 8 --epochs 2",
                    help="train-generator options for the pretrained-follower generator")
    ap.add_argument("--recipes", default="quick,linear-probe,pretrained", help="trainers for the follower part")
    ap.add_argument("--default-recipes", default=None, help="trainers for the default's folder (default: --recipes)")
    ap.add_argument("--train-args", default="--warmup-epochs 20 --epochs 4",
                    help="train-generator options for the colour-key generator (as the default's)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work, parts, seed = args.work, args.parts.split(","), ["--seed", str(args.seed)]
    scratch = ["--epochs", str(args.epochs)]
    rows: list[dict] = []
    print(f"{'part':9} {'protection':22} {'trainer':14} {'protected':>8} {'clean':>8} {'gap':>7}")
    if "follower" in parts:
        probe = protect(work, "probe_follower", ["--victim", "efficientnet-lite0-probe", *args.follower_args.split(), *seed])
        for name, folder, recipes in (("default", work / "B_protected", args.default_recipes or args.recipes),
                                      ("pretrained follower", probe, args.recipes)):
            for recipe in recipes.split(","):
                extra = scratch if recipe == "quick" else []
                row(rows, "follower", name, recipe, true_labels(work, folder, recipe, extra))
    if "check" in parts:
        folders = {"none": work / "B_photos", "built-in generator": protect(work, "builtin", None),
                   "colour keys": protect(work, "colour", ["--encoder", "colour", *args.train_args.split(), *seed]),
                   "default": work / "B_protected"}
        for name, folder in folders.items():
            row(rows, "check", name, "quick, true", true_labels(work, folder, "quick", scratch))
            checked = cli("evaluate", str(folder), "--clean", str(work / "B_photos"), *scratch)
            row(rows, "check", name, "quick, scraper", checked)
            clustered = cli("evaluate", str(folder), "--clean", str(work / "B_photos"), "--auto-labels", "clusters",
                            *scratch)
            row(rows, "check", name, "quick, clusters", clustered)
        subsets, originals, labels = named_only(work, folders)
        for name, folder in subsets.items():
            named = cli("evaluate", str(folder), "--clean", str(originals), "--labels", str(labels), *scratch)
            row(rows, "check", name, "scraper, named", named)
    if args.json:
        remove(args.json)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
