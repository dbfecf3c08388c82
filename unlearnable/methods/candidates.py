"""`train-generator --candidates N`: N generators of one folder started, each trained for a
quarter of its run; the best by the check of :mod:`unlearnable.candidates` is trained to the
end and copied to ``--out``.

Why a quarter: a seed's protection is decided early, and the check sees it then
(docs/label-free.md, "Candidates checked after a quarter of their run")."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..candidates import CHECK_PICTURES, check_candidates
from ..errors import ConfigError, UnlearnableError
from ..io.discovery import list_images
from ..io.files import atomic_write_bytes
from ..training.generator import checkpoint_path
from ..training.schedule import epochs_text
from .base import TrainReport

TRIAL = 0.25  # each candidate is trained this fraction of its run before the check
AUTO = 3  # candidates when the settings leave it to the folder (the cpu preset)...
AUTO_PICTURES = CHECK_PICTURES  # ...of at least this many pictures: the size the check was measured on


def how_many(settings, data_dir: Path, ctx=None) -> int:
    """``settings.candidates``, or where it is None :data:`AUTO` on a folder of :data:`AUTO_PICTURES`
    or more that the check can judge (cluster keys, one process, no time limit), else 1."""
    if settings.candidates is not None:
        return settings.candidates
    if (settings.keys != "clusters" or not settings.label_aware or settings.max_minutes is not None
            or (ctx is not None and getattr(ctx, "active", False))):
        return 1
    n = len(list_images(data_dir))
    if settings.fraction is not None:
        n = max(1, round(n * settings.fraction))
    if settings.max_images is not None:
        n = min(n, settings.max_images)
    return AUTO if n >= AUTO_PICTURES else 1


class _RunSteps:
    """The game's steps of a whole candidates run on one count, so that progress and its time left
    cover the run and not one candidate: N trials of a quarter of a run, then the kept one's last
    three quarters. A trial's length is a quarter of a run's steps until one has ended (it stops
    at an epoch's end, within half an epoch of that); after that it is the measured one."""

    def __init__(self, n: int):
        self.n, self.trial, self.last = n, None, 0

    def of_run(self, i: int, done: int, total: int, final: bool) -> tuple[int, int]:
        """(done, total) of the whole run for candidate ``i``'s step ``done`` of ``total``."""
        trial = self.trial if self.trial is not None else TRIAL * total
        self.last = done
        whole = self.n * trial + total - trial
        at = self.n * trial + done - trial if final else i * trial + done
        return round(min(at, whole)), round(whole)

    def ended(self, final: bool) -> None:
        if not final and self.trial is None and self.last:
            self.trial = self.last


def candidate_dir(out: Path) -> Path:
    """Where the candidates of ``--out out`` are written (kept after the run: any of them is a protection file)."""
    return out.with_name(out.stem + ".candidates")


def train_candidates(method, data_dir: Path, out: Path, settings, device, *, resume: bool = False, ctx=None,
                     on_load=None, on_progress=None):
    """``settings.candidates`` generators trained a quarter of the way, the check's best finished and copied to ``out``."""
    n = settings.candidates
    if ctx is not None and getattr(ctx, "active", False):
        raise ConfigError("--candidates runs in one process; leave out torchrun, or train each --seed on its own")
    if settings.keys != "clusters":
        raise ConfigError("--candidates checks generators with cluster keys; leave out --keys folders")
    folder = candidate_dir(out)
    seeds = [settings.seed + i for i in range(n)]
    paths = [folder / f"seed-{s}.safetensors" for s in seeds]
    if any(p.exists() or checkpoint_path(p).exists() for p in paths) and not resume:
        raise UnlearnableError(f"{folder} holds candidates of an earlier run; add --resume to use them, or delete "
                               "that folder to start over")
    start = time.perf_counter()
    features: dict = {}  # the candidates find their keys in the same features: computed once
    steps = _RunSteps(n)

    def train(i: int, what: str, **kw) -> TrainReport:
        final = "pause_after" not in kw

        def progress(done, total, info):
            if on_progress:
                on_progress(*steps.of_run(i, done, total, final), f"candidate {i + 1}/{n} (seed {seeds[i]}), {what}: {info}")
        report = method.train(data_dir, paths[i], replace(settings, seed=seeds[i], candidates=1), device,
                              resume=checkpoint_path(paths[i]).exists(), ctx=ctx, on_load=on_load,
                              on_progress=progress, on_key_progress=on_progress, shared_features=features, **kw)
        steps.ended(final)
        return report

    trials = [train(i, "a quarter of its run", pause_after=TRIAL) for i, p in enumerate(paths) if not p.exists()]

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
    # the kept one is trained to the end (unless an earlier run did that); the others' checkpoints go
    final = train(best, "the kept one, to the end") if checkpoint_path(paths[best]).exists() else None
    for p in paths:
        checkpoint_path(p).unlink(missing_ok=True)
    atomic_write_bytes(out, paths[best].read_bytes())
    last = final or (trials[-1] if trials else None)  # what the candidates share (keys, ...)
    table = {**(last.table if last else {}), "candidates": str(n), "kept": f"seed {seeds[best]}",
             "check": f"{check.accuracies[best]:.1%} (originals {check.clean_accuracy:.1%})"}
    if trials:  # every candidate of one folder pauses at the same epoch
        e = trials[0].details["epochs_done"]
        table["checked after"] = epochs_text(e)
    details = {**(last.details if last else {}), "output": str(out), "candidates": [
        {"seed": s, "file": str(p), "check_accuracy": a} for s, p, a in zip(seeds, paths, check.accuracies)],
        "check_clean_accuracy": check.clean_accuracy, "check_labels": check.labels, "kept_seed": seeds[best],
        "check_pictures": check.pictures, "trial": TRIAL}
    return TrainReport(output=str(out), images=last.images if last else check.pictures,
                       skipped=last.skipped if last else 0, skipped_files=last.skipped_files if last else [],
                       seconds=time.perf_counter() - start, table=table, details=details)
