"""CIFAR-10 benchmark of the default CPU presets, through the real CLI.

    tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C /tmp/cifar10
    python examples/cifar10_benchmark.py --data /tmp/cifar10 [--work /tmp/ubench] [--json results.json]

Uses the first 1,000 training pictures of each class (10,000 in all) as the data owner's
folder and the full 10,000-picture test set. Prints one table: clean accuracy, protected
accuracy (generator trained on the same 10,000), generalization accuracy (generator trained
on a 20% subset, applied to all 10,000), train-generator wall time and poison images/s, plus
a row for the plain paper algorithm (`--preset paper-small`) given a comparable training
time (`--paper-minutes`, 15 by default).
Nothing derived from the images is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchlib import cli, make_subset, remove


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="extracted CIFAR-10 folder (with train/ and test/)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-cifar10-bench"), help="scratch folder")
    ap.add_argument("--per-class", type=int, default=1000, help="training pictures per class")
    ap.add_argument("--epochs", type=int, default=None, help="victim epochs for evaluate (default: the quick recipe)")
    ap.add_argument("--no-paper-row", action="store_true", help="skip the paper-algorithm baseline row")
    ap.add_argument("--paper-minutes", type=float, default=15.0,
                    help="training time given to the paper's algorithm (the default preset takes about 19 min here)")
    ap.add_argument("--train-args", default="", help='extra options for every train-generator call, e.g. "--robust none" '
                    "(the README's figures of 2026-11-29 were measured before --robust grayscale became the default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    owner = work / "photos"
    make_subset(args.data, owner, args.per_class)
    test = args.data / "test"
    ev = ["--epochs", str(args.epochs)] if args.epochs else []
    rows = []

    def protect_and_measure(name: str, train_args: list[str], with_clean: bool = False) -> dict:
        gen = work / f"{name}.safetensors"
        prot = work / f"{name}_protected"
        remove(gen, prot, Path(str(gen) + ".ckpt"))
        trained = cli("train-generator", str(owner), "--out", str(gen), *train_args, *args.train_args.split())
        poisoned = cli("poison", str(owner), "--gen", str(gen), "--out", str(prot), "--batch-size", "256")
        extra = ["--clean", str(owner)] if with_clean else []
        evaluated = cli("evaluate", str(prot), "--test", str(test), *extra, *ev)
        row = {
            "setting": name,
            "train_images": trained["images"],
            "train_generator_minutes": trained["_wall_seconds"] / 60,
            "poison_images_per_s": poisoned["images_per_s"],
            "max_change_levels": poisoned["max_change_levels"],
            "protected_accuracy": evaluated["accuracy"],
            "protected_peak_accuracy": evaluated["peak_accuracy"],
        }
        if with_clean:
            row["clean_accuracy"] = evaluated["clean_accuracy"]
        rows.append(row)
        return row

    start = time.perf_counter()
    full = protect_and_measure("gue-cpu", ["--keys", "folders"], with_clean=True)
    protect_and_measure("gue-cpu-20pct", ["--keys", "folders", "--fraction", "0.2"])
    if not args.no_paper_row:
        protect_and_measure(f"paper-algorithm-{args.paper_minutes:g}min",
                            ["--preset", "paper-small", "--max-minutes", str(args.paper_minutes)])
    total = (time.perf_counter() - start) / 60

    clean = full["clean_accuracy"]
    print(f"\nCIFAR-10, {args.per_class * 10} training pictures, 10,000 test pictures, eps 8/255, small CNN victim")
    print(f"clean accuracy (trained on the originals): {clean:.2%}")
    header = f"{'setting':30} {'gen images':>10} {'train min':>9} {'poison img/s':>12} {'max chg':>7} {'acc final':>9} {'acc peak':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['setting']:30} {r['train_images']:>10} {r['train_generator_minutes']:>9.1f} "
              f"{r['poison_images_per_s']:>12.0f} {r['max_change_levels']:>7} {r['protected_accuracy']:>9.2%} "
              f"{r['protected_peak_accuracy']:>8.2%}")
    print(f"whole benchmark: {total:.1f} minutes")
    if args.json:
        args.json.write_text(json.dumps({"clean_accuracy": clean, "rows": rows, "total_minutes": total}, indent=2))


if __name__ == "__main__":
    main()
