"""Protection without labels, on CIFAR-10, through the real CLI (issue "Data owners have no labels").

    tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C /tmp/cifar10
    python examples/label_free_benchmark.py --data /tmp/cifar10 [--cases B,C,D,A] [--json label_free.json]

The owner's pictures are the first ``--per-class`` (1,000) training pictures of each class,
copied (as symlinks) into ONE flat folder with shuffled names, so no command can see a
class. The trainer brings its own labels as a CSV (``evaluate --labels``) and tests on the
full test set. Every case prints the protected accuracy next to the clean accuracy under
the same labels and victim.

* B: generator trained on the flat 10,000 with no labels; trainer uses the true 10 labels.
* C: the same protected folder; trainer uses other labels (animals vs vehicles, 2 classes).
* D: the built-in generator (``examples/train_default_generator.py``: trained on classes 0-4
  only, flat, no labels; its encoder on other pictures of classes 0-4); classes 5-9 protected
  as a flat folder; trainer uses their true 5 labels (chance 20%): what it does on pictures
  whose content it never saw. ``--d-gen`` measures another file the same way.
* A: generator trained on a labelled 20% (class folders, ``--keys folders``); the 20% is
  protected in its class folders and the other 80% as one flat folder (each picture takes
  its nearest class's key); trainer uses the true labels on all of them.

``--train-args`` passes options to every train-generator call (e.g. "--clusters 40").
``--no-clean`` skips the trainer on the originals (the same figure for every run of a case; a
second seed of a generator then costs one training less).
``--defenses grayscale,jpeg`` also runs `defend` on case B's protected folder (true labels).
Nothing derived from the images is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from benchlib import cli, remove

from unlearnable.methods import default_generator

ANIMALS = {"bird", "cat", "deer", "dog", "frog", "horse"}


def flat_copy(pictures: list[tuple[Path, str]], dest: Path, seed: int) -> dict[str, str]:
    """Symlink pictures into one flat folder under shuffled names; returns {name: class}."""
    order = list(range(len(pictures)))
    random.Random(seed).shuffle(order)
    truth = {}
    dest.mkdir(parents=True, exist_ok=True)
    for i, j in enumerate(order):
        src, cls = pictures[j]
        name = f"IMG_{i:05d}{src.suffix}"
        if not (dest / name).exists():
            os.symlink(src.resolve(), dest / name)
        truth[name] = cls
    return truth


def class_tree(pictures: list[tuple[Path, str]], dest: Path, rename=lambda c: c) -> None:
    """Symlink pictures into dest/<class>/ (the trainer's labelled test folder)."""
    for src, cls in pictures:
        (dest / rename(cls)).mkdir(parents=True, exist_ok=True)
        target = dest / rename(cls) / f"{cls}_{src.name}"
        if not target.exists():
            os.symlink(src.resolve(), target)


def write_labels(path: Path, truth: dict[str, str], prefix: str = "", rename=lambda c: c) -> None:
    with open(path, "a") as fh:
        for name, cls in truth.items():
            fh.write(f"{prefix}{name},{rename(cls)}\n")


def pictures_of(root: Path, classes: list[str], first: int, skip: int = 0) -> list[tuple[Path, str]]:
    return [(p, c) for c in classes for p in sorted((root / c).iterdir())[skip:skip + first]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="extracted CIFAR-10 folder (with train/ and test/)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-label-free"), help="scratch folder")
    ap.add_argument("--per-class", type=int, default=1000, help="training pictures per class")
    ap.add_argument("--test-per-class", type=int, default=1000, help="test pictures per class (1,000: the full set)")
    ap.add_argument("--cases", default="B,C,D,A", help="which cases to run, comma-separated")
    ap.add_argument("--epochs", type=int, default=None, help="victim epochs (default: the quick recipe, 20)")
    ap.add_argument("--train-args", default="", help="extra options for every train-generator call")
    ap.add_argument("--poison-args", default="", help="extra options for every poison call (e.g. --push-steps 10)")
    ap.add_argument("--d-gen", type=Path, default=None, help="generator for case D (default: the built-in one)")
    ap.add_argument("--defenses", default="", help="after case B, also run `defend` on its protected folder with these "
                    "defenses (comma-separated, e.g. grayscale,jpeg), with the true labels")
    ap.add_argument("--no-clean", action="store_true", help="do not train on the originals (their figure is the "
                    "same for every run of a case)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    classes = sorted(p.name for p in (args.data / "train").iterdir() if p.is_dir())
    train = pictures_of(args.data / "train", classes, args.per_class)
    test_pics = pictures_of(args.data / "test", classes, args.test_per_class)
    extra, poison_extra = args.train_args.split(), args.poison_args.split()
    ev = ["--epochs", str(args.epochs)] if args.epochs else []
    cases = [c.strip().upper() for c in args.cases.split(",")]
    rows, start = [], time.perf_counter()

    def run(case: str, owner: Path, gen_args: list[str], targets: list[tuple[Path, Path]], labels: Path,
            test: Path, describe: str, gen: Path | None = None, protected_by: dict | None = None) -> Path:
        """Train (unless ``gen`` is given), protect each (source, output), evaluate with ``labels``.

        ``protected_by``: the row of an earlier case of this run that protected the same folder with
        the same generator; its folder is evaluated as it is instead of being protected again.
        """
        trained = None
        if gen is None:
            gen = work / f"gen_{case}.safetensors"
            remove(gen, Path(str(gen) + ".ckpt"))
            trained = cli("train-generator", str(owner), "--out", str(gen), *gen_args, *extra)
        changes = [{"max_change_levels": protected_by["max_change_levels"]}] if protected_by else []
        for src, out in targets if protected_by is None else []:
            remove(out)
            changes.append(cli("poison", str(src), "--gen", str(gen), "--out", str(out), "--batch-size", "256",
                               *poison_extra))
        prot_root = targets[0][1].parent if len(targets) > 1 else targets[0][1]
        clean_root = targets[0][0].parent if len(targets) > 1 else targets[0][0]
        originals = [] if args.no_clean else ["--clean", str(clean_root)]
        evaluated = cli("evaluate", str(prot_root), "--test", str(test), "--labels", str(labels),
                        *originals, "--report", str(work / f"{case}.evaluation.json"), *ev)
        rows.append({
            "case": case, "describe": describe, "train_images": evaluated["train_images"],
            "test_images": evaluated["test_images"], "classes": len(set(l.split(",")[1] for l in labels.read_text().split())),
            "generator_minutes": None if trained is None else trained["_wall_seconds"] / 60,
            "max_change_levels": max(c["max_change_levels"] for c in changes),
            "protected_accuracy": evaluated["accuracy"], "protected_peak_accuracy": evaluated["peak_accuracy"],
            "clean_accuracy": evaluated["clean_accuracy"],
        })
        print(json.dumps(rows[-1]), flush=True)
        return gen

    if "B" in cases or "C" in cases:
        owner = work / "B_photos"
        truth = flat_copy(train, owner, seed=0)
        labels = work / "B_labels.csv"
        remove(labels)
        write_labels(labels, truth)
        test = work / "test10"
        class_tree(test_pics, test)
        gen_b = run("B", owner, [], [(owner, work / "B_protected")], labels, test,
                    "10,000 flat, no labels; trainer: true 10 labels") if "B" in cases else None
        row_b = next((r for r in rows if r["case"] == "B"), None)
        if "B" in cases and args.defenses:
            defended = cli("defend", str(work / "B_protected"), "--test", str(test), "--labels", str(labels),
                           "--clean", str(owner), *[a for d in args.defenses.split(",") for a in ("--defense", d.strip())],
                           *ev)
            for r in defended["rows"]:
                rows.append({**rows[-1], "case": f"B+{r['defense']}", "describe": f"case B's folder; trainer: {r['description']}",
                             "generator_minutes": None, "protected_accuracy": r["protected_accuracy"],
                             "protected_peak_accuracy": r["protected_peak_accuracy"], "clean_accuracy": r["clean_accuracy"]})
                print(json.dumps(rows[-1]), flush=True)
        if "C" in cases:
            two = lambda c: "animal" if c in ANIMALS else "vehicle"  # noqa: E731
            labels_c = work / "C_labels.csv"
            remove(labels_c)
            write_labels(labels_c, truth, rename=two)
            test_c = work / "test2"
            class_tree(test_pics, test_c, rename=two)
            if gen_b is None:
                gen_b = work / "gen_B.safetensors"
            run("C", owner, [], [(owner, work / "B_protected")], labels_c, test_c,
                "same protected folder; trainer: animals vs vehicles", gen=gen_b, protected_by=row_b)
    if "D" in cases:
        seen, unseen = classes[:5], classes[5:]
        owner = None  # the generator is given, not trained here
        uploads = work / "D_uploads"
        truth = flat_copy([t for t in train if t[1] in unseen], uploads, seed=2)
        labels = work / "D_labels.csv"
        remove(labels)
        write_labels(labels, truth)
        test = work / "test_unseen"
        class_tree([t for t in test_pics if t[1] in unseen], test)
        gen_d = args.d_gen or default_generator()
        if gen_d is None:
            raise SystemExit("case D measures the built-in generator: run examples/train_default_generator.py first")
        run("D", owner, [], [(uploads, work / "D_protected")], labels, test,
            f"built-in generator (classes {', '.join(seen)}); {', '.join(unseen)} protected flat; trainer: their 5 labels",
            gen=gen_d)
    if "A" in cases:
        k = args.per_class // 5
        base = work / "A"
        labelled, uploads = base / "labelled", base / "uploads"
        class_tree(pictures_of(args.data / "train", classes, k), labelled)
        truth = flat_copy(pictures_of(args.data / "train", classes, args.per_class - k, skip=k), uploads, seed=3)
        labels = work / "A_labels.csv"
        remove(labels)
        write_labels(labels, {f"{c}/{p.name}": c for c in classes for p in sorted((labelled / c).iterdir())}, "labelled/")
        write_labels(labels, truth, "uploads/")
        test = work / "test10"
        class_tree(test_pics, test)
        prot = work / "A_protected"
        run("A", labelled, ["--keys", "folders"], [(labelled, prot / "labelled"), (uploads, prot / "uploads")],
            labels, test, "generator on a labelled 20%; the other 80% protected flat; trainer: true labels")

    total = (time.perf_counter() - start) / 60
    print(f"\nProtection without labels, CIFAR-10, eps 8/255, small CNN victim, {args.epochs or 20} epochs")
    header = f"{'case':12} {'train pics':>10} {'classes':>7} {'gen min':>7} {'max chg':>7} {'protected':>9} {'peak':>7} {'clean':>7}  setting"
    print(header)
    print("-" * len(header))
    for r in rows:
        gm = "-" if r["generator_minutes"] is None else f"{r['generator_minutes']:.1f}"
        clean = "-" if r["clean_accuracy"] is None else f"{r['clean_accuracy']:.2%}"
        print(f"{r['case']:12} {r['train_images']:>10} {r['classes']:>7} {gm:>7} {r['max_change_levels']:>7} "
              f"{r['protected_accuracy']:>9.2%} {r['protected_peak_accuracy']:>7.2%} {clean:>7}  {r['describe']}")
    print(f"whole benchmark: {total:.1f} minutes")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "total_minutes": total, "args": vars(args)}, indent=2, default=str))


if __name__ == "__main__":
    main()
