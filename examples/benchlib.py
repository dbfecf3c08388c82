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
