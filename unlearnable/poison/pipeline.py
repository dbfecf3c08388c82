"""The streaming pipeline: decode ahead, batch, one forward pass, encode and write behind.

Worker threads hash and decode the next pictures and encode, check and write the finished
ones while the main thread runs the forward passes. Batches hold pictures of one size and at
most ``config.batch_size`` pictures or ``config.pixel_budget`` pixels; pictures decoded ahead
and written behind are bounded in pixels too, so memory does not grow with the folder.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from ..budget import Budget
from ..errors import ConfigError, DataError, GuaranteeError
from ..io.codec import Decoded, decode_image, decode_written, encode_image
from ..io.discovery import Skipped, list_images, no_pictures
from ..io.files import atomic_write_bytes, sha256_file
from ..game.push import FeaturePush
from ..methods import default_generator, load_protector
from .config import PoisonConfig, PoisonResult
from .discover import class_of, header_pixels, output_names
from .fit_keys import FITTED, PER_KEY, FitReport, fit_keys, kept_reason, should_fit
from .record import MANIFEST, OutputLock, State, merge_shards, prepare_output, recorded_generators, shard_names
from .tiling import apply_budget, compare, perturb_at, resolve_work_size


class _Prefetcher:
    """Hash and decode files in worker threads, ahead of the forward passes, in order.

    At most ``window`` files are in flight, and at most about ``pixel_budget`` pixels: each
    file's size is read from its header (cheap) before it is queued, so a folder of 24-MP
    photos never has more than one or two decoding at once, from the very first file.
    """

    def __init__(self, pool: ThreadPoolExecutor, items: list[tuple[Path, str]], window: int, pixel_budget: int,
                 metadata: bool = False):
        self.pool, self.items, self.window, self.pixel_budget = pool, items, window, pixel_budget
        self.metadata = metadata  # read each picture's profile, EXIF and XMP to write them back

    def _load(self, path: Path, rel: str):
        digest = sha256_file(path)
        try:
            return rel, digest, decode_image(path, metadata=self.metadata), None
        except DataError as exc:
            return rel, digest, None, exc

    def __iter__(self):
        pending: deque = deque()  # (future, pixels)
        it = iter(self.items)
        nxt = next(it, None)
        in_flight = 0
        while True:
            while nxt is not None and len(pending) < self.window:
                pixels = header_pixels(nxt[0])
                if pending and in_flight + pixels > self.pixel_budget:
                    break
                pending.append((self.pool.submit(self._load, *nxt), pixels))
                in_flight += pixels
                nxt = next(it, None)
            if not pending:
                return
            future, pixels = pending.popleft()
            in_flight -= pixels
            yield future.result()


def _finish_one(rel: str, digest: str, dec: Decoded, delta: torch.Tensor, levels: int, config: PoisonConfig,
                out_dir: Path, name: str) -> dict:
    """Budget, encode, decode again, check, write atomically; the manifest entry (worker thread)."""
    if dec.gray:  # one perturbation for the one channel: the mean of three is within the budget too
        delta = delta.mean(0, keepdim=True).expand_as(delta)
    protected = apply_budget(dec.rgb, delta, levels)
    data = encode_image(protected, dec.alpha, config.fmt, config.quality, gray=dec.gray, meta=dec.meta)
    written = decode_written(data)
    change, quality = compare(written, dec.rgb)
    if change > levels and config.fmt == "png":
        raise GuaranteeError(f"{rel}: a pixel would move {change} levels, over the budget of {levels}; nothing was written")
    atomic_write_bytes(out_dir / name, data)
    return {
        "source": rel, "source_sha256": digest, "output": name, "max_change_levels": change,
        "psnr": quality, "alpha": dec.alpha is not None, "gray": dec.gray, "metadata": sorted(dec.meta),
    }


def _labels(info, rels: list[str]) -> dict[str, int | None]:
    """The class of each picture where the protection file needs or can use one."""
    if info.needs_labels:
        unlabeled = [r for r in rels if class_of(r, info.class_names) is None]
        if unlabeled:
            what = "generator is label-aware" if info.method.startswith("gue") else info.method.upper() + " file needs classes"
            raise DataError(
                f"this {what}: put each picture in a sub-folder named after its class "
                f"({', '.join(info.class_names[:10])}); {unlabeled[0]} has none. Generators trained by this version "
                "protect any folder layout: retrain it with `unlearnable train-generator`"
            )
        return {r: class_of(r, info.class_names) for r in rels}
    if info.class_names and getattr(getattr(info, "config", None), "keys", None) is not None:
        # a keyed generator trained on class folders: a picture in one of them takes its class,
        # any other picture its nearest class's key
        return {r: class_of(r, info.class_names) for r in rels}
    return {}


class _Run:
    """One shard's run into one output folder: the batch being filled and the writes behind it."""

    def __init__(self, protector, labels: dict, levels: int, work_size: int, config: PoisonConfig, out_dir: Path,
                 names: dict[str, str], state: State, result: PoisonResult, device: torch.device, total: int,
                 on_progress: Callable[[int, int], None] | None):
        self.protector, self.labels, self.levels, self.work_size = protector, labels, levels, work_size
        self.config, self.out_dir, self.names, self.state, self.result = config, out_dir, names, state, result
        self.device, self.total, self.on_progress = device, total, on_progress
        self.workers = config.workers or min(8, (os.cpu_count() or 2))
        self.window = 2 * config.batch_size + self.workers
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="unlearnable-io")
        self.writing: deque = deque()  # futures of files being encoded and written, in order
        self.in_flight: deque = deque()  # their sizes in pixels
        self.batch: list[tuple[str, str, Decoded]] = []
        self.batch_pixels = 0

    def add(self, rel: str, digest: str, dec: Decoded) -> None:
        pixels = dec.rgb.shape[0] * dec.rgb.shape[1]
        if self.batch and self.batch_pixels + pixels > self.config.pixel_budget:
            self.run_batch()
        self.batch.append((rel, digest, dec))
        self.batch_pixels += pixels
        if len(self.batch) >= self.config.batch_size:
            self.run_batch()
        while self.writing and (len(self.writing) > self.window or sum(self.in_flight) > 2 * self.config.pixel_budget):
            self.writing[0].result()  # wait for the oldest write: memory stays bounded
            self.collect(block=False)
        self.collect(block=False)

    def run_batch(self) -> None:
        by_shape: dict[tuple, list] = {}
        for item in self.batch:
            by_shape.setdefault(tuple(item[2].rgb.shape), []).append(item)
        for group in by_shape.values():
            x = torch.stack([d.rgb for _, _, d in group]).permute(0, 3, 1, 2).float().div(255).to(self.device)
            known = [self.labels.get(r) for r, _, _ in group]
            deltas = perturb_at(self.protector, x, known, self.config, self.work_size, self.levels / 255).cpu()
            del x
            for (rel, digest, dec), delta in zip(group, deltas):
                self.writing.append(self.pool.submit(_finish_one, rel, digest, dec, delta, self.levels, self.config,
                                                     self.out_dir, self.names[rel]))
                self.in_flight.append(delta.shape[1] * delta.shape[2])
        self.batch, self.batch_pixels = [], 0
        self.collect(block=False)
        self.report()

    def collect(self, block: bool) -> None:
        while self.writing and (block or self.writing[0].done()):
            entry = self.writing.popleft().result()
            self.in_flight.popleft()
            self.state.record(entry)
            self.result.protected += 1

    def report(self) -> None:
        if self.on_progress:
            r = self.result
            self.on_progress(r.already_done + len(r.skipped) + r.protected, self.total)

    def finish(self) -> None:
        if self.batch:
            self.run_batch()
        self.collect(block=True)

    def close(self) -> None:
        """Whatever stopped the run, files already being written are finished and recorded."""
        for fut in self.writing:
            try:
                self.state.record(fut.result())
                self.result.protected += 1
            except Exception:  # noqa: BLE001 - the first error is the one being raised
                pass
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.state.close()


def _skip(result: PoisonResult, skip: Skipped, on_skip: Callable[[Skipped], None] | None) -> None:
    result.skipped.append(asdict(skip))
    if on_skip:
        on_skip(skip)


def protect_folder(
    input_dir: Path,
    gen_path: Path,
    out_dir: Path | None = None,
    config: PoisonConfig = PoisonConfig(),
    device: torch.device = torch.device("cpu"),
    on_progress: Callable[[int, int], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
    on_keys: Callable[[int, int], None] | None = None,
) -> PoisonResult:
    """Protect every picture under ``input_dir`` (this shard's share) with the file ``gen_path``.

    With ``config.fit_keys`` the file's cluster keys are first fitted to the whole folder
    (:mod:`.fit_keys`; ``on_keys`` follows that pass) and the fitted file protects it.
    """
    input_dir = Path(input_dir)
    out_dir = Path(out_dir) if out_dir else input_dir.parent / f"{input_dir.resolve().name}_protected"
    special: list[Skipped] = []
    all_files = list_images(input_dir, special)
    if not all_files:
        raise no_pictures(input_dir, special)
    protector, info = load_protector(gen_path, device)
    if config.push_steps and FeaturePush.from_keys(getattr(protector, "keys", None)) is None and not should_fit(
            config.fit_keys, info, len(all_files), config.fit_keys == "auto" and _is_built_in(sha256_file(gen_path))):
        raise ConfigError(f"--push-steps needs a generator file that carries its keys' feature centres, and {gen_path} "
                          "has none (files made before 2026-12-07 have none; the built-in generator finds them in "
                          f"a folder of at least {PER_KEY} pictures a key); train one on your pictures with "
                          "`unlearnable train-generator`, or leave out --push-steps")
    work_size = resolve_work_size(config.work_size, info.image_size)
    all_rels = [p.relative_to(input_dir).as_posix() for p in all_files]
    labels = _labels(info, all_rels)
    prepare_output(input_dir, out_dir)
    with OutputLock(out_dir, config.shard):
        fitted, kept = _fitted(all_files, gen_path, info, out_dir, config, device, on_keys)
        if fitted is not None:
            gen_path = fitted.path
            protector, info = load_protector(gen_path, device)
        result = _protect_shard(input_dir, gen_path, out_dir, config, device, all_files, all_rels, special, protector,
                                labels, Budget(info.eps_text, info.eps), work_size, on_progress, on_skip)
    if fitted is not None:
        result.fitted_keys, result.fitted_pictures, result.fitted_reused = str(fitted.path), fitted.pictures, fitted.reused
    result.keys_kept = kept
    return result


def _is_built_in(gen_sha: str) -> bool:
    """Whether the file with SHA-256 ``gen_sha`` is the generator that ships with the package (or a copy)."""
    shipped = default_generator()
    return shipped is not None and gen_sha == sha256_file(shipped)


def _fitted(files: list[Path], gen_path: Path, info, out_dir: Path, config: PoisonConfig, device,
            on_keys) -> tuple[FitReport | None, str]:
    """The file with keys fitted to this folder when ``config.fit_keys`` asks for it (else None), and
    why ``auto`` kept the built-in generator's own keys ("" when it did not, or was not asked)."""
    auto = config.fit_keys == "auto"
    gen_sha = sha256_file(gen_path)
    built_in = auto and _is_built_in(gen_sha)
    if not should_fit(config.fit_keys, info, len(files), built_in):
        return None, kept_reason(info, len(files)) if built_in else ""
    have = (out_dir / FITTED).is_file()
    if not have and gen_sha in recorded_generators(out_dir):
        if auto:  # an earlier run protected part of this folder with the file's own keys: go on with them
            return None, "kept the built-in generator's own keys, which an earlier run into this folder used"
        raise DataError(f"{out_dir} was protected with the file's own keys; run with --fit-keys no to continue it, "
                        "or choose another --out")
    if config.shard[1] > 1 and not have:
        if auto:
            return None, ("kept the built-in generator's own keys: each part of --shard would fit keys of its own "
                          f"(fit them once with a run without --shard, whose {FITTED} every part then uses)")
        raise ConfigError("--fit-keys yes with --shard: each part would fit keys of its own; fit them once with "
                          f"a run without --shard, whose {FITTED} in the output folder every part then uses")
    return fit_keys(files, gen_path, out_dir, device, config.workers or min(8, os.cpu_count() or 2), on_keys,
                    base_sha=gen_sha, push=config.push_steps > 0), ""


def _protect_shard(input_dir, gen_path, out_dir, config, device, all_files, all_rels, special, protector, labels,
                   budget: Budget, work_size, on_progress, on_skip) -> PoisonResult:
    k, n = config.shard
    names = output_names(all_rels, config.fmt)  # over the whole folder, so shards agree on names
    files, rels = all_files[k::n], all_rels[k::n]
    partial_name, manifest_name = shard_names(k, n)
    header = {"generator_sha256": sha256_file(gen_path), "format": config.fmt, "eps": budget.text, "work_size": work_size,
              "metadata": config.metadata, "amplitude": config.amplitude,
              **({"push_steps": config.push_steps} if config.push_steps else {})}
    state = State(out_dir, header, partial_name)
    special = special[k::n]  # links, devices, RAW files...: listed, counted, skipped
    total = len(files) + len(special)
    result = PoisonResult(input_dir=str(input_dir), output_dir=str(out_dir), manifest=str(out_dir / MANIFEST),
                          files=total, budget_levels=budget.levels, format=config.fmt, shard=f"{k}/{n}", work_size=work_size)
    for skip in special:
        _skip(result, skip, on_skip)
    start = time.perf_counter()
    run = _Run(protector, labels, budget.levels, work_size, config, out_dir, names, state, result, device, total, on_progress)
    try:
        todo = []
        for path, rel in zip(files, rels):
            prev = state.done.get(rel)
            if prev and (out_dir / prev["output"]).exists() and prev.get("source_sha256") == sha256_file(path):
                result.already_done += 1
            else:
                todo.append((path, rel))
        for rel, digest, dec, err in _Prefetcher(run.pool, todo, run.window, config.pixel_budget, config.metadata):
            if err is None:
                run.add(rel, digest, dec)
            elif config.strict:
                raise DataError(f"{rel}: {err} (stopped because of --strict)") from None
            else:
                _skip(result, Skipped(rel, str(err)), on_skip)
        run.finish()
        if on_progress:
            on_progress(total, total)
    finally:
        run.close()
    result.seconds = time.perf_counter() - start
    result.images_per_s = result.protected / result.seconds if result.seconds > 0 else 0.0
    entries = [state.done[r] for r in rels if r in state.done]
    result.max_change_levels = max((e["max_change_levels"] for e in entries), default=0)
    finite = [e["psnr"] for e in entries if e["psnr"] is not None]
    result.mean_psnr = sum(finite) / len(finite) if finite else None
    manifest = {"header": header, "input_dir": str(input_dir.resolve()), "generator": str(Path(gen_path).resolve()),
                "budget_levels": budget.levels, "shard": f"{k}/{n}", "files": entries, "skipped": result.skipped}
    atomic_write_bytes(out_dir / manifest_name, json.dumps(manifest, indent=1).encode())
    os.unlink(out_dir / partial_name)
    if n > 1:
        result.merged = merge_shards(out_dir, n)
    return result
