"""Does the check of `train-generator --candidates` see, early in a run, how a generator will end?

    python examples/early_check.py PHOTOS RUN.json [RUN.json ...] [--fraction 0.25] [--work DIR]

Each RUN.json is what `label_free_benchmark.py --json` wrote for one finished run on PHOTOS (its
``--train-args`` and the trainer's accuracy with the true labels). Each run's generator is
trained again, with the same options, for ``--fraction`` of its epochs only (paused as
`--candidates` pauses its candidates), and every such early generator is checked without
labels. The script prints the early check beside the finished run's true-label figure: if the
check's lowest early figures belong to the runs that ended strongest, checking candidates
early is enough to keep the best. Only ``--seed``, ``--warmup-epochs``, ``--epochs``,
``--clusters``, ``--key-neighbours`` and ``--kmeans-starts`` are read from the train args.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import torch

from unlearnable.budget import parse_budget
from unlearnable.candidates import check_candidates
from unlearnable.methods.gue import GUE
from unlearnable.training.generator import checkpoint_path, train_generator

READ = ("seed", "warmup_epochs", "epochs", "clusters", "key_neighbours", "kmeans_starts")


def options(train_args: str) -> tuple[int, dict]:
    """(seed, the options `GUE.settings` takes) from a benchmark run's --train-args."""
    words = shlex.split(train_args)
    given = {}
    for flag, value in zip(words[::2], words[1::2]):
        name = flag.lstrip("-").replace("-", "_")
        if name not in READ:
            raise SystemExit(f"{flag} in the train args is not one this script reads ({', '.join(READ)})")
        given[name] = int(value)
    return given.pop("seed", 0), given


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path, help="the folder the runs' generators were trained on")
    ap.add_argument("runs", type=Path, nargs="+", help="label_free_benchmark.py --json files of finished runs")
    ap.add_argument("--fraction", type=float, default=0.25, help="how much of each run to train before the check")
    ap.add_argument("--work", type=Path, default=Path("early_check"), help="where the early generators go")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    start, paths, finished = time.perf_counter(), [], []
    for run in a.runs:
        record = json.loads(run.read_text())
        seed, given = options(record["args"]["train_args"])
        settings = GUE.settings("cpu", parse_budget("8/255"), 32, seed, given)
        out = a.work / f"{run.stem}.safetensors"
        result = train_generator(a.photos, out, settings, torch.device("cpu"), resume=checkpoint_path(out).exists(),
                                 pause_after=a.fraction)
        print(f"{run.stem}: trained {result.epochs_done} epochs", flush=True)
        paths.append(out)
        finished.append(record["rows"][0]["protected_accuracy"])
    check = check_candidates(a.photos, paths, torch.device("cpu"))
    print(check.labels)
    print(f"the check on the originals: {check.clean_accuracy:.2%}")
    print("| run | the check, early | the finished run, true labels |\n|---|---|---|")
    for run, acc, fin in zip(a.runs, check.accuracies, finished):
        print(f"| {run.stem} | {acc:.2%} | {fin:.2%} |")
    minutes = (time.perf_counter() - start) / 60
    print(f"{minutes:.1f} minutes")
    if a.json:
        a.json.write_text(json.dumps({"runs": [str(r) for r in a.runs], "early": check.accuracies, "finished": finished,
                                      "clean": check.clean_accuracy, "fraction": a.fraction, "minutes": minutes}, indent=2))


if __name__ == "__main__":
    main()
