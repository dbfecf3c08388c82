"""Helpers shared by the benchmark scripts: run the real CLI, build CIFAR-10 owner folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def cli(*args: str) -> dict:
    """Run `unlearnable ... --json` and return its JSON object; progress stays on stderr."""
    cmd = [sys.executable, "-m", "unlearnable", *args, "--json"]
    print("$ unlearnable " + " ".join(args), file=sys.stderr, flush=True)
    start = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True).stdout
    data = json.loads(out)
    data["_wall_seconds"] = time.perf_counter() - start
    return data


def make_subset(data: Path, dest: Path, per_class: int, skip: int = 0) -> None:
    """dest/<class>/<name> -> training pictures skip..skip+per_class of each class (symlinks)."""
    if dest.exists():
        return
    for cls in sorted(p.name for p in (data / "train").iterdir() if p.is_dir()):
        (dest / cls).mkdir(parents=True)
        for src in sorted((data / "train" / cls).iterdir())[skip:skip + per_class]:
            target = dest / cls / src.name
            try:
                os.symlink(src.resolve(), target)
            except OSError:
                shutil.copy2(src, target)


def remove(*paths: Path) -> None:
    """Delete stale outputs of an earlier run (files or folders)."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def time_steps_in_turns(cases: dict, x, y, steps: int, base: str) -> dict[str, dict[str, float]]:
    """Median seconds per game step of each case, and its ratio to case `base`.

    `cases` maps a name to (solver, (generator, victim, generator optimiser, victim optimiser),
    robust option names[, feature push or None]). The cases take turns step by step, so a machine that slows down
    during the run slows all of them alike; the first round warms up and is not counted.
    """
    import statistics

    import torch

    from unlearnable.augment import crop_flip
    from unlearnable.game.solvers import GameBatch
    from unlearnable.robust import trainer_transforms

    times: dict[str, list[float]] = {name: [] for name in cases}
    for step in range(steps + 1):
        for name, (solver, (gen, victim, g_opt, v_opt), robust, *push) in cases.items():
            sampler = torch.Generator().manual_seed(step)
            view = trainer_transforms(tuple(robust), sampler)
            start = time.perf_counter()
            solver.step(GameBatch(gen, victim, x, y, g_opt, v_opt, lambda t: view(crop_flip(t, generator=sampler)), True,
                                  push=push[0] if push else None))
            if step:
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    return {name: {"seconds_per_step": m, "ratio": m / median[base]} for name, m in median.items()}


def write_json(path: str | None, data) -> None:
    """Write `data` to `path` as indented JSON, when a path was given."""
    if path:
        with open(path, "w") as fh:
            json.dump(data, fh, indent=2)


def add_runs_option(ap, what: str) -> None:
    """The repeatable ``--runs LABEL FILE...`` of the tables over seeds: a label, then ``what`` of its seeds."""
    ap.add_argument("--runs", nargs="+", action="append", required=True, metavar="LABEL FILE",
                    help=f"a label, then {what} of its seeds")


def seed_cells(protected: list[float], clean: float) -> str:
    """The table cells of one setting over seeds: protected mean (each seed), originals, protection, spread."""
    mean = sum(protected) / len(protected)
    each = ", ".join(f"{p:.2%}" for p in protected)
    return (f"**{mean:.2%}** ({each}) | {clean:.2%} | {100 * (clean - mean):.1f} points | "
            f"{100 * (max(protected) - min(protected)):.1f} points |")
