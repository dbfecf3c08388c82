"""GUE (BOME), GUE (TGDA), GUE-AT, REM, EM and TAP side by side on CIFAR-10, through the CLI.

    tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C /tmp/cifar10
    python examples/methods_benchmark.py --data /tmp/cifar10 [--per-class 1000] [--json out.json]

For each method: train it on the owner's folder (the first --per-class training pictures of
each class), protect that folder, protect --new-per-class further pictures per class it never
saw (the "1,000 new pictures" column, timed), and train the small-CNN victim on the protected
folder with standard training and with PGD adversarial training at 2/255 and 4/255. Prints one
table. Every method runs its CPU preset; --train-args passes smaller (or larger) budgets to
every train-generator call. Nothing derived from the images is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchlib import cli, make_subset, remove

from unlearnable.methods import COMMON_OPTIONS, METHODS as REGISTRY

# options some method reads; any other train-generator option (--eps, --seed, ...) every method takes
SPECIFIC = frozenset().union(*(m.options for m in REGISTRY.values())) - COMMON_OPTIONS

# row name -> (method, train-generator arguments), from the method registry
METHODS = {row: (method, args) for method in REGISTRY.values() for row, args in method.benchmark_rows().items()}


def options_for(method, extra: list[str]) -> list[str]:
    """The options of ``extra`` that ``method`` reads (train-generator refuses the others).

    ``--epochs`` here is the GUE variants' game length, as in docs/methods.md: REM, EM and TAP
    read --epochs too, as source-model epochs, but keep their own length (--iterations, TAP's
    preset) in this benchmark.
    """
    kept, i = [], 0
    while i < len(extra):
        flag = extra[i]
        takes_value = i + 1 < len(extra) and not extra[i + 1].startswith("--")
        group = extra[i:i + 2] if takes_value else [flag]
        name = flag.lstrip("-").replace("-", "_")
        if name == "epochs" and method.name in ("rem", "em", "tap"):
            pass
        elif name in method.options or name not in SPECIFIC:
            kept += group
        i += len(group)
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="extracted CIFAR-10 folder (with train/ and test/)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-methods-bench"), help="scratch folder")
    ap.add_argument("--test", type=Path, default=None, help="labelled test folder (default: DATA/test)")
    ap.add_argument("--per-class", type=int, default=1000, help="owner's training pictures per class")
    ap.add_argument("--new-per-class", type=int, default=100, help="unseen pictures per class to protect (timed)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    ap.add_argument("--epochs", type=int, default=None, help="victim epochs, standard training (default: quick recipe)")
    ap.add_argument("--adv-epochs", type=int, default=None, help="victim epochs under adversarial training")
    ap.add_argument("--no-at", action="store_true", help="skip the adversarial-training columns")
    ap.add_argument("--train-args", default="", help="extra train-generator arguments, each passed to the methods that "
                    "read it, e.g. '--max-images 2000 --iterations 60'")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    owner, new = work / f"photos-{args.per_class}", work / f"new-{args.new_per_class}"
    make_subset(args.data, owner, args.per_class)
    make_subset(args.data, new, args.new_per_class, skip=args.per_class)
    test = str(args.test or args.data / "test")
    std_ep = ["--epochs", str(args.epochs)] if args.epochs else []
    adv_ep = ["--epochs", str(args.adv_epochs)] if args.adv_epochs else std_ep
    extra = args.train_args.split()
    rows, start = [], time.perf_counter()
    clean = cli("evaluate", str(owner), "--test", test, *std_ep, "--report", str(work / "clean.evaluation.json"))
    clean_at = {} if args.no_at else {
        eps: cli("evaluate", str(owner), "--test", test, "--adv-eps", eps, *adv_ep,
                 "--report", str(work / "clean.evaluation.json"))["accuracy"]
        for eps in ("2/255", "4/255")
    }
    for name in args.methods.split(","):
        gen, prot, fresh = work / f"{name}.safetensors", work / f"{name}_protected", work / f"{name}_new"
        remove(gen, prot, fresh, Path(str(gen) + ".ckpt"))
        method, row_args = METHODS[name]
        trained = cli("train-generator", str(owner), "--out", str(gen), *row_args, *options_for(method, extra))
        cli("poison", str(owner), "--gen", str(gen), "--out", str(prot), "--batch-size", "256")
        unseen = cli("poison", str(new), "--gen", str(gen), "--out", str(fresh), "--batch-size", "256")
        row = {
            "method": name,
            "generation_minutes": trained["_wall_seconds"] / 60,
            "protect_1000_seconds": 1000 / unseen["images_per_s"],
            "poison_images_per_s": unseen["images_per_s"],
            "max_change_levels": unseen["max_change_levels"],
        }
        report = str(work / f"{name}.evaluation.json")
        row["standard"] = cli("evaluate", str(prot), "--test", test, *std_ep, "--report", report)["accuracy"]
        if not args.no_at:
            for eps in ("2/255", "4/255"):
                res = cli("evaluate", str(prot), "--test", test, "--adv-eps", eps, *adv_ep, "--report", report)
                row[f"at_{eps.split('/')[0]}"] = res["accuracy"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    total = (time.perf_counter() - start) / 60

    print(f"\nCIFAR-10, {args.per_class * 10} owner pictures, eps 8/255, small-CNN victim "
          f"({args.epochs or 'recipe'} epochs; adversarial {args.adv_epochs or args.epochs or 'recipe'}), "
          f"{clean['test_images']:,} clean test pictures")
    at = "".join(f", {v:.2%} under AT {k}" for k, v in clean_at.items())
    print(f"trained on the originals: {clean['accuracy']:.2%}{at}")
    header = f"{'method':10} {'gen min':>8} {'1k new s':>9} {'img/s':>7} {'max chg':>7} {'standard':>9} {'AT 2/255':>9} {'AT 4/255':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        at = "".join(f" {r[k]:>9.2%}" if k in r else f" {'-':>9}" for k in ("at_2", "at_4"))
        print(f"{r['method']:10} {r['generation_minutes']:>8.1f} {r['protect_1000_seconds']:>9.1f} "
              f"{r['poison_images_per_s']:>7.1f} {r['max_change_levels']:>7} {r['standard']:>9.2%}{at}")
    print(f"whole benchmark: {total:.1f} minutes")
    if args.json:
        args.json.write_text(json.dumps({"clean_accuracy": clean["accuracy"], "clean_at": clean_at, "rows": rows,
                                         "total_minutes": total}, indent=2))


if __name__ == "__main__":
    main()
