"""`train-generator --candidates N`: N generators of one folder, the best by the check of
:mod:`unlearnable.candidates` copied to ``--out``."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..candidates import check_candidates
from ..errors import ConfigError, UnlearnableError
from ..io.files import atomic_write_bytes
from ..training.generator import checkpoint_path
from .base import TrainReport


def candidate_dir(out: Path) -> Path:
    """Where the candidates of ``--out out`` are written (kept after the run: any of them is a protection file)."""
    return out.with_name(out.stem + ".candidates")


def train_candidates(method, data_dir: Path, out: Path, settings, device, *, resume: bool = False, ctx=None,
                     on_load=None, on_progress=None):
    """``settings.candidates`` generators, one after the other, the check's best copied to ``out``."""
    n = settings.candidates
    if ctx is not None and getattr(ctx, "active", False):
        raise ConfigError("--candidates runs in one process; leave out torchrun, or train each --seed on its own")
    if settings.keys != "clusters":
        raise ConfigError("--candidates checks generators with cluster keys; leave out --keys folders")
    folder = candidate_dir(out)
    seeds = [settings.seed + i for i in range(n)]
    paths = [folder / f"seed-{s}.safetensors" for s in seeds]
    finished = [p for p in paths if p.is_file() and not checkpoint_path(p).exists()]
    if finished and not resume:
        raise UnlearnableError(f"{folder} holds candidates of an earlier run; add --resume to use them, or delete "
                               "that folder to start over")
    start = time.perf_counter()
    reports = []
    for i, (seed, path) in enumerate(zip(seeds, paths)):
        def progress(done, total, info, i=i, seed=seed):
            if on_progress:
                on_progress(done, total, f"candidate {i + 1}/{n} (seed {seed}): {info}")
        if path not in finished:
            reports.append(method.train(data_dir, path, replace(settings, seed=seed, candidates=1), device,
                                        resume=resume and checkpoint_path(path).exists(), ctx=ctx, on_load=on_load,
                                        on_progress=progress))

    def stage(name: str, epochs: int) -> None:
        stage.name, stage.epochs = name, epochs

    def epoch(e: dict) -> None:
        if on_progress:
            on_progress(e["epoch"], stage.epochs, f"{stage.name}: test accuracy {e['test_accuracy']:.1%}")

    def labels(done: int, total: int) -> None:
        if on_progress:
            on_progress(done, total, "the check: clustering the originals")

    stage.name, stage.epochs = "", 1
    check = check_candidates(data_dir, paths, device, settings.image_size, on_stage=stage, on_epoch=epoch,
                             on_labels=labels)
    best = check.best
    atomic_write_bytes(out, paths[best].read_bytes())
    last = reports[-1] if reports else None  # what the candidates trained in this run share (keys, steps, ...)
    table = {**(last.table if last else {}), "candidates": str(n), "kept": f"seed {seeds[best]}",
             "check": f"{check.accuracies[best]:.1%} (originals {check.clean_accuracy:.1%})"}
    details = {**(last.details if last else {}), "output": str(out), "candidates": [
        {"seed": s, "file": str(p), "check_accuracy": a} for s, p, a in zip(seeds, paths, check.accuracies)],
        "check_clean_accuracy": check.clean_accuracy, "check_labels": check.labels, "kept_seed": seeds[best]}
    return TrainReport(output=str(out), images=last.images if last else check.pictures,
                       skipped=last.skipped if last else 0, skipped_files=last.skipped_files if last else [],
                       seconds=time.perf_counter() - start, table=table, details=details)
