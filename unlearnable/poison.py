"""`poison`: protect any folder of pictures with one generator forward pass per image.

The output mirrors the input tree. Originals are only ever opened for reading; the output
folder must not be, or lie inside, the input folder (nor contain it). Each output file is
written atomically, and a line per finished file is appended to ``manifest.partial.jsonl``
so an interrupted run resumes where it stopped. The final ``manifest.json`` is written
atomically at the end.

The guarantee: the perturbation is expressed in 8-bit levels, clipped to
L = floor(eps * 255), added to the decoded original and *rounded*; the encoded file is then
decoded again and every pixel compared with the original before the file is written. A pixel
that moved more than L levels is a :class:`GuaranteeError`, never a warning.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image

from .errors import DataError, GuaranteeError, UnlearnableError
from .io.images import (
    Decoded,
    IMAGE_SUFFIXES,
    Skipped,
    atomic_write_bytes,
    decode_image,
    encode_image,
    list_images,
    sha256_file,
)
from .methods import load_protector

PARTIAL = "manifest.partial.jsonl"
MANIFEST = "manifest.json"
SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


@dataclass(frozen=True)
class PoisonConfig:
    batch_size: int = 64  # images per forward pass
    fmt: str = "png"  # png (lossless, default) | jpeg | webp (lossy: weakens protection)
    quality: int = 95  # JPEG/WebP quality 1-100, lossy formats only
    strict: bool = False  # a damaged input file stops the run instead of being skipped
    tile: int = 512  # pictures larger than tile x tile pixels are processed in tiles
    tile_overlap: int = 64  # pixels of overlap between tiles, blended linearly
    pixel_budget: int = 8_000_000  # pixels per forward batch, and roughly in flight: bounds memory
    workers: int = 0  # decode/encode threads; 0 = up to 8, one per CPU core
    shard: tuple[int, int] = (0, 1)  # (k, n): protect only every n-th picture from the k-th
    # compute the perturbation with the shorter side at this many pixels and upsample it:
    # "auto" = the generator's training size (README, "Resolution policy"), 0 = full resolution
    work_size: int | str = "auto"


@dataclass
class PoisonResult:
    input_dir: str
    output_dir: str
    manifest: str
    files: int = 0
    protected: int = 0
    already_done: int = 0
    skipped: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    images_per_s: float = 0.0
    work_size: int = 0  # the shorter side the perturbation was computed at (0: full resolution)
    max_change_levels: int = 0
    budget_levels: int = 0
    mean_psnr: float | None = None
    format: str = "png"
    shard: str = "0/1"
    merged: bool = False  # a shard that completed the set wrote the merged manifest.json

    def to_dict(self) -> dict:
        return asdict(self)


def check_output_location(input_dir: Path, output_dir: Path) -> None:
    """Refuse an output folder that is, or is inside, the input (or that contains it)."""
    src, dst = input_dir.resolve(), output_dir.resolve()
    if dst == src or src in dst.parents:
        raise DataError(f"output folder {output_dir} is inside the input folder; choose an --out outside {input_dir}")
    if dst in src.parents:
        raise DataError(f"output folder {output_dir} contains the input folder; choose a separate --out")


def output_names(rel_paths: list[str], fmt: str) -> dict[str, str]:
    """Map each relative source path to a relative output path with the format's suffix.

    ``a.jpg`` -> ``a.png``; if two sources would collide (``a.jpg`` and ``a.png``), the later
    one keeps its full name (``a.jpg.png``).
    """
    taken: set[str] = set()
    names = {}
    for rel in rel_paths:
        stem = rel.rsplit(".", 1)[0]
        name = stem + SUFFIX[fmt]
        if name.lower() in taken:
            name = rel + SUFFIX[fmt]
        taken.add(name.lower())
        names[rel] = name
    return names


def class_of(rel: str, class_names: list[str]) -> int | None:
    """Class index from the first-level sub-folder, or None when there is none."""
    parts = rel.split("/")
    if len(parts) < 2 or parts[0] not in class_names:
        return None
    return class_names.index(parts[0])


def batch_keys(generator: torch.nn.Module, x: torch.Tensor, known: list[int | None]) -> torch.Tensor | None:
    """y for a batch of whole pictures: the known classes, the rest from the file's key model.

    None for an image-only generator (and for a label-aware one without keys given nothing,
    which :func:`protect_folder` has refused before).
    """
    if known and all(k is not None for k in known):
        return torch.tensor(known, device=x.device)
    key = getattr(generator, "key", None)
    found = key(x) if key is not None else None
    if found is not None:
        for i, k in enumerate(known):
            if k is not None:
                found[i] = k
    return found


def _feather(n: int, overlap: int, device) -> torch.Tensor:
    ramp = torch.ones(n, device=device)
    k = min(overlap, n // 2)
    if k > 0:
        edge = torch.arange(1, k + 1, device=device, dtype=torch.float32) / (k + 1)
        ramp[:k] = edge
        ramp[-k:] = edge.flip(0)
    return ramp


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


@torch.no_grad()
def perturbation(generator: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, tile: int, overlap: int) -> torch.Tensor:
    """Perturbation for a batch x (N, 3, H, W); large pictures go through overlapping tiles.

    Tiles are blended with linear feathering weights, a convex combination, so the blend
    never leaves [-eps, eps] and shows no seams.
    """
    n, _, h, w = x.shape
    if h <= tile and w <= tile:
        return generator(x, y)
    stride = max(tile - overlap, 1)
    out = torch.zeros_like(x)
    weight = torch.zeros(1, 1, h, w, device=x.device)
    for top in _starts(h, tile, stride):
        for left in _starts(w, tile, stride):
            th, tw = min(tile, h), min(tile, w)
            patch = generator(x[:, :, top:top + th, left:left + tw], y)
            wgt = _feather(th, overlap, x.device)[:, None] * _feather(tw, overlap, x.device)[None, :]
            out[:, :, top:top + th, left:left + tw] += patch * wgt
            weight[:, :, top:top + th, left:left + tw] += wgt
    return out / weight


def resolve_work_size(work_size: int | str, trained_size: int) -> int:
    """The shorter side to compute perturbations at: ``auto`` is the generator's training size."""
    if work_size == "auto":
        return trained_size
    if work_size == "full":
        return 0
    try:
        size = int(work_size)
    except (TypeError, ValueError):
        size = -1
    if size != 0 and size < 8:
        raise DataError(f"--work-size must be auto, full or a number of pixels >= 8, not {work_size!r}")
    return size


def _perturb_at(generator: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, config: PoisonConfig,
                work_size: int) -> torch.Tensor:
    """The perturbation at full size, or computed with the shorter side at ``work_size`` and upsampled.

    Bilinear upsampling makes every pixel a convex combination of computed ones, so the
    L-inf bound still holds; the pattern then has the scale the generator was trained at,
    which is what survives a trainer's downscaling (README, "Resolution policy").
    """
    h, w = x.shape[2:]
    if not work_size or min(h, w) <= work_size:
        return perturbation(generator, x, y, config.tile, config.tile_overlap)
    scale = work_size / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    delta = perturbation(generator, small, y, config.tile, config.tile_overlap)
    return F.interpolate(delta, size=(h, w), mode="bilinear", align_corners=False)


def apply_budget(original: torch.Tensor, delta: torch.Tensor, levels: int) -> torch.Tensor:
    """Add a perturbation to a uint8 (H, W, 3) picture, rounding, within ``levels`` levels.

    ``delta`` is (3, H, W) on [0, 1] scale. Rounding (not truncation) keeps negative changes.
    """
    step = (delta.permute(1, 2, 0).float() * 255).clamp(-levels, levels)
    return (original.float() + step).round().clamp(0, 255).to(torch.uint8)


def max_change(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a.int() - b.int()).abs().max().item()) if a.numel() else 0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Peak signal-to-noise ratio in dB; None for identical pictures (infinite PSNR)."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return None if mse == 0 else round(10 * math.log10(255**2 / mse), 3)


def _decode_bytes(data: bytes) -> torch.Tensor:
    import numpy as np

    with Image.open(io.BytesIO(data)) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy())


class _State:
    """The resumable record of finished files (``manifest.partial.jsonl``)."""

    def __init__(self, out_dir: Path, header: dict, partial_name: str = PARTIAL):
        self.path = out_dir / partial_name
        self.done: dict[str, dict] = {}
        existing_manifest = out_dir / MANIFEST
        if existing_manifest.exists():
            try:
                data = json.loads(existing_manifest.read_text())
                self._check_header(data.get("header", {}), header, out_dir)
                self.done.update({e["source"]: e for e in data.get("files", [])})
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{existing_manifest} is damaged; delete it or choose another --out") from None
        if self.path.exists():
            with open(self.path) as fh:
                lines = fh.read().splitlines()
            if lines:
                try:
                    json.loads(lines[-1])
                except json.JSONDecodeError:
                    # a line cut short by the interruption: drop it for good, or the lines this run
                    # appends would leave it in the middle, where it reads as damage
                    lines = lines[:-1]
                    atomic_write_bytes(self.path, "".join(line + "\n" for line in lines).encode())
            for i, line in enumerate(lines):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise DataError(f"{self.path} is damaged; delete the output folder and start again") from None
                if i == 0:
                    self._check_header(record, header, out_dir)
                else:
                    self.done[record["source"]] = record
        else:
            with open(self.path, "w") as fh:
                fh.write(json.dumps(header) + "\n")
        self.header = header
        self._fh = open(self.path, "a")

    @staticmethod
    def _check_header(found: dict, header: dict, out_dir: Path) -> None:
        for key in ("generator_sha256", "format", "work_size"):
            if found.get(key, 0 if key == "work_size" else None) != header[key]:
                raise DataError(
                    f"{out_dir} holds output of a different run ({key} differs); choose another --out "
                    "or delete that folder"
                )

    def record(self, entry: dict) -> None:
        self.done[entry["source"]] = entry
        self._fh.write(json.dumps(entry) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def made_by_unlearnable(out_dir: Path) -> bool:
    """True if ``out_dir`` holds a manifest of ours: a header with the generator's checksum.

    Decided by content, not by a file name anyone could have (a user's own manifest.txt).
    """
    def header_of(path: Path) -> dict | None:
        try:
            with open(path, encoding="utf-8") as fh:
                if path.suffix == ".jsonl":
                    return json.loads(fh.readline())
                return json.load(fh).get("header")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            return None

    for path in out_dir.glob("manifest*.json*"):
        header = header_of(path) if path.is_file() else None
        if isinstance(header, dict) and isinstance(header.get("generator_sha256"), str) and "format" in header:
            return True
    return False


class OutputLock:
    """An exclusive lock on an output folder (per shard), held while `poison` writes into it.

    A second run into the same folder is refused with the first one's process id. The lock is
    the operating system's (``flock``), so it disappears with a crashed process.
    """

    def __init__(self, out_dir: Path, shard: tuple[int, int]):
        k, n = shard
        self.path = out_dir / (".unlearnable.lock" if n == 1 else f".unlearnable.shard-{k}-of-{n}.lock")
        self.fh = None

    def __enter__(self) -> "OutputLock":
        import fcntl

        self.fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise DataError(f"{self.path.parent} is being written by another `unlearnable poison` run ({holder}); "
                            "wait for it to finish or choose another --out") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()  # releases the lock


def _prepare_output(input_dir: Path, out_dir: Path) -> None:
    check_output_location(input_dir, out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise DataError(f"--out {out_dir} exists and is not a folder; choose another --out")
        contents = [p for p in out_dir.iterdir() if not p.name.startswith(".unlearnable")]  # our lock files
        if contents and not made_by_unlearnable(out_dir):
            raise DataError(f"--out {out_dir} is not empty and was not made by unlearnable; choose an empty folder")
    out_dir.mkdir(parents=True, exist_ok=True)


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"k/n"`` -> (k, n), 0 <= k < n; None -> this process's torchrun rank, or (0, 1)."""
    if text is None:
        rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
        return (int(rank), int(world)) if rank is not None and world is not None else (0, 1)
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise DataError(f"--shard {text!r} must look like k/n, e.g. 0/4 for the first of four parts") from None
    if not (n >= 1 and 0 <= k < n):
        raise DataError(f"--shard {text}: k must be between 0 and n-1 (parts are numbered from 0)")
    return k, n


def _shard_names(k: int, n: int) -> tuple[str, str]:
    if n == 1:
        return PARTIAL, MANIFEST
    return f"manifest.partial.shard-{k}-of-{n}.jsonl", f"manifest.shard-{k}-of-{n}.json"


class _Prefetcher:
    """Hash and decode files in worker threads, ahead of the forward passes, in order.

    At most ``window`` files are in flight, and at most about ``pixel_budget`` pixels: each
    file's size is read from its header (cheap) before it is queued, so a folder of 24-MP
    photos never has more than one or two decoding at once, from the very first file.
    """

    def __init__(self, pool: ThreadPoolExecutor, items: list[tuple[Path, str]], window: int, pixel_budget: int):
        self.pool, self.items, self.window, self.pixel_budget = pool, items, window, pixel_budget

    def _load(self, path: Path, rel: str):
        digest = sha256_file(path)
        try:
            return rel, digest, decode_image(path), None
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


def header_pixels(path: Path) -> int:
    """Width x height from the file's header without decoding it; 0 when unreadable."""
    try:
        with Image.open(path) as img:
            return img.width * img.height
    except Exception:  # noqa: BLE001 - any failure is reported when the file is decoded
        return 0


def _finish_one(rel: str, digest: str, dec: Decoded, delta: torch.Tensor, levels: int, config: PoisonConfig,
                out_dir: Path, name: str) -> dict:
    """Budget, encode, decode again, check, write atomically; the manifest entry (worker thread)."""
    if dec.gray:  # one perturbation for the one channel: the mean of three is within the budget too
        delta = delta.mean(0, keepdim=True).expand_as(delta)
    protected = apply_budget(dec.rgb, delta, levels)
    data = encode_image(protected, dec.alpha, config.fmt, config.quality, gray=dec.gray)
    written = _decode_bytes(data)
    change = max_change(written, dec.rgb)
    if change > levels and config.fmt == "png":
        raise GuaranteeError(f"{rel}: a pixel would move {change} levels, over the budget of {levels}; nothing was written")
    atomic_write_bytes(out_dir / name, data)
    return {
        "source": rel, "source_sha256": digest, "output": name, "max_change_levels": change,
        "psnr": psnr(written, dec.rgb), "alpha": dec.alpha is not None, "gray": dec.gray,
    }


def protect_folder(
    input_dir: Path,
    gen_path: Path,
    out_dir: Path | None = None,
    config: PoisonConfig = PoisonConfig(),
    device: torch.device = torch.device("cpu"),
    on_progress: Callable[[int, int], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> PoisonResult:
    """Protect every picture under ``input_dir`` (this shard's share) with the file ``gen_path``.

    Streaming: worker threads hash and decode the next pictures and encode, check and write
    the finished ones while the main thread runs the forward passes. Batches hold pictures of
    one size and at most ``config.batch_size`` pictures or ``config.pixel_budget`` pixels.
    """
    input_dir = Path(input_dir)
    out_dir = Path(out_dir) if out_dir else input_dir.parent / f"{input_dir.resolve().name}_protected"
    if config.fmt not in SUFFIX:
        raise DataError(f"unknown output format {config.fmt!r}; use png, jpeg or webp")
    k, n = config.shard
    special: list[Skipped] = []
    all_files = list_images(input_dir, special)
    if not all_files:
        raise DataError(f"no pictures found in {input_dir} (looked for files ending in {', '.join(IMAGE_SUFFIXES)})")
    generator, info = load_protector(gen_path, device)
    levels = int(math.floor(info.eps * 255 + 1e-6))
    work_size = resolve_work_size(config.work_size, info.image_size)
    all_rels = [p.relative_to(input_dir).as_posix() for p in all_files]
    labels = {}
    if info.needs_labels:
        unlabeled = [r for r in all_rels if class_of(r, info.class_names) is None]
        if unlabeled:
            raise DataError(
                f"this {'generator is label-aware' if info.method.startswith('gue') else info.method.upper() + ' file needs classes'}: put each picture in a sub-folder named after its class "
                f"({', '.join(info.class_names[:10])}); {unlabeled[0]} has none. Generators trained by this version "
                "protect any folder layout: retrain it with `unlearnable train-generator`"
            )
        labels = {r: class_of(r, info.class_names) for r in all_rels}
    elif info.class_names and info.config.keys is not None:
        # a keyed generator trained on class folders: a picture in one of them takes its class,
        # any other picture its nearest class's key
        labels = {r: class_of(r, info.class_names) for r in all_rels}
    _prepare_output(input_dir, out_dir)
    with OutputLock(out_dir, config.shard):
        names = output_names(all_rels, config.fmt)  # over the whole folder, so shards agree on names
        files, rels = all_files[k::n], all_rels[k::n]
        partial_name, manifest_name = _shard_names(k, n)
        header = {"generator_sha256": sha256_file(gen_path), "format": config.fmt, "eps": info.eps_text,
                  "work_size": work_size}
        state = _State(out_dir, header, partial_name)
        result = PoisonResult(
            input_dir=str(input_dir), output_dir=str(out_dir), manifest=str(out_dir / MANIFEST),
            files=len(files), budget_levels=levels, format=config.fmt, shard=f"{k}/{n}", work_size=work_size,
        )
        for skip in special[k::n]:
            result.skipped.append(asdict(skip))
            if on_skip:
                on_skip(skip)
        start = time.perf_counter()
        workers = config.workers or min(8, (os.cpu_count() or 2))
        writing: deque = deque()  # futures of files being encoded and written, in order
        in_flight: deque = deque()  # their sizes in pixels

        def collect(block: bool) -> None:
            while writing and (block or writing[0].done()):
                entry = writing.popleft().result()
                in_flight.popleft()
                state.record(entry)
                result.protected += 1

        batch: list[tuple[str, str, Decoded]] = []
        batch_pixels = 0

        def run_batch() -> None:
            nonlocal batch, batch_pixels
            by_shape: dict[tuple, list] = {}
            for item in batch:
                by_shape.setdefault(tuple(item[2].rgb.shape), []).append(item)
            for group in by_shape.values():
                x = torch.stack([d.rgb for _, _, d in group]).permute(0, 3, 1, 2).float().div(255).to(device)
                y = batch_keys(generator, x, [labels.get(r) for r, _, _ in group])
                deltas = _perturb_at(generator, x, y, config, work_size).cpu()
                del x
                for (rel, digest, dec), delta in zip(group, deltas):
                    writing.append(pool.submit(_finish_one, rel, digest, dec, delta, levels, config, out_dir, names[rel]))
                    in_flight.append(delta.shape[1] * delta.shape[2])
            batch, batch_pixels = [], 0
            collect(block=False)
            if on_progress:
                finished = result.already_done + len(result.skipped) + result.protected
                on_progress(finished, len(files))

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unlearnable-io")
        try:
            todo = []
            for path, rel in zip(files, rels):
                prev = state.done.get(rel)
                if prev and (out_dir / prev["output"]).exists() and prev.get("source_sha256") == sha256_file(path):
                    result.already_done += 1
                else:
                    todo.append((path, rel))
            window = 2 * config.batch_size + workers
            for rel, digest, dec, err in _Prefetcher(pool, todo, window, config.pixel_budget):
                if err is not None:
                    if config.strict:
                        raise DataError(f"{rel}: {err} (stopped because of --strict)") from None
                    skip = Skipped(rel, str(err))
                    result.skipped.append(asdict(skip))
                    if on_skip:
                        on_skip(skip)
                else:
                    pixels = dec.rgb.shape[0] * dec.rgb.shape[1]
                    if batch and batch_pixels + pixels > config.pixel_budget:
                        run_batch()
                    batch.append((rel, digest, dec))
                    batch_pixels += pixels
                    if len(batch) >= config.batch_size:
                        run_batch()
                while writing and (len(writing) > window or sum(in_flight) > 2 * config.pixel_budget):
                    writing[0].result()  # wait for the oldest write: memory stays bounded
                    collect(block=False)
                collect(block=False)
            if batch:
                run_batch()
            collect(block=True)
            if on_progress:
                on_progress(len(files), len(files))
        finally:
            # whatever stopped us, files already being written are finished and recorded
            for fut in writing:
                try:
                    state.record(fut.result())
                    result.protected += 1
                except Exception:  # noqa: BLE001 - the first error is the one being raised
                    pass
            pool.shutdown(wait=True, cancel_futures=True)
            state.close()
        result.seconds = time.perf_counter() - start
        result.images_per_s = result.protected / result.seconds if result.seconds > 0 else 0.0
        entries = [state.done[r] for r in rels if r in state.done]
        result.max_change_levels = max((e["max_change_levels"] for e in entries), default=0)
        finite = [e["psnr"] for e in entries if e["psnr"] is not None]
        result.mean_psnr = sum(finite) / len(finite) if finite else None
        manifest = {
            "header": header,
            "input_dir": str(input_dir.resolve()),
            "generator": str(Path(gen_path).resolve()),
            "budget_levels": levels,
            "shard": f"{k}/{n}",
            "files": entries,
            "skipped": result.skipped,
        }
        atomic_write_bytes(out_dir / manifest_name, json.dumps(manifest, indent=1).encode())
        os.unlink(out_dir / partial_name)
        if n > 1:
            result.merged = merge_shards(out_dir, n)
        return result


def merge_shards(out_dir: Path, n: int) -> bool:
    """Write ``manifest.json`` from the n shard manifests once all are there; True if written."""
    parts = [Path(out_dir) / _shard_names(k, n)[1] for k in range(n)]
    if not all(p.exists() for p in parts):
        return False
    loaded = [json.loads(p.read_text()) for p in parts]
    headers = {json.dumps(m["header"], sort_keys=True) for m in loaded}
    if len(headers) > 1:
        raise DataError(f"the shard manifests in {out_dir} come from different generators or formats; rerun the odd shard")
    merged = {**loaded[0], "shard": f"merged from {n}",
              "files": sorted((e for m in loaded for e in m["files"]), key=lambda e: e["source"]),
              "skipped": [s for m in loaded for s in m["skipped"]]}
    atomic_write_bytes(Path(out_dir) / MANIFEST, json.dumps(merged, indent=1).encode())
    for p in parts:
        p.unlink()
    return True
