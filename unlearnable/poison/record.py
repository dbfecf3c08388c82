"""The output folder's records: the resumable record, the manifests, the lock, the shards.

Each finished file adds a line to ``manifest.partial.jsonl`` (one per shard), so an
interrupted run resumes where it stopped; ``manifest.json`` is written atomically at the end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import DataError
from ..io.files import atomic_write_bytes
from .discover import check_output_location

PARTIAL = "manifest.partial.jsonl"
MANIFEST = "manifest.json"


class State:
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
        made_at = found.get("work_size", 0)  # outputs made before --work-size auto: full resolution
        if made_at != header["work_size"] and found.get("generator_sha256") == header["generator_sha256"]:
            raise DataError(f"{out_dir} was protected with --work-size {made_at or 'full'}; add --work-size "
                            f"{made_at or 'full'} to continue it, or choose another --out")
        if found.get("metadata", header["metadata"]) != header["metadata"]:  # runs before 2026-11-30 lack it
            fix = "add --strip-metadata" if header["metadata"] else "leave out --strip-metadata"
            raise DataError(f"{out_dir} was protected {'without' if header['metadata'] else 'with'} metadata; "
                            f"{fix} to continue it, or choose another --out")
        made_with = found.get("amplitude", "generator")  # runs before 2026-12-06 kept the generator's amplitudes
        if made_with != header["amplitude"]:
            raise DataError(f"{out_dir} was protected with --amplitude {made_with}; add --amplitude {made_with} to "
                            "continue it, or choose another --out")
        made_steps, steps = found.get("push_steps", 0), header.get("push_steps", 0)  # recorded only when > 0
        if made_steps != steps and found.get("generator_sha256") == header["generator_sha256"]:
            fix = f"add --push-steps {made_steps}" if made_steps else "leave out --push-steps"
            raise DataError(f"{out_dir} was protected with --push-steps {made_steps}; {fix} to continue it, "
                            "or choose another --out")
        for key in ("generator_sha256", "format"):
            if found.get(key) != header[key]:
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
    return bool(recorded_generators(out_dir))


def recorded_generators(out_dir: Path) -> set[str]:
    """The generator checksums in the headers of our manifests (finished or partial) in ``out_dir``."""
    def header_of(path: Path) -> dict | None:
        try:
            with open(path, encoding="utf-8") as fh:
                if path.suffix == ".jsonl":
                    return json.loads(fh.readline())
                return json.load(fh).get("header")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            return None

    found = set()
    for path in out_dir.glob("manifest*.json*"):
        header = header_of(path) if path.is_file() else None
        if isinstance(header, dict) and isinstance(header.get("generator_sha256"), str) and "format" in header:
            found.add(header["generator_sha256"])
    return found


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


def prepare_output(input_dir: Path, out_dir: Path) -> None:
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


def shard_names(k: int, n: int) -> tuple[str, str]:
    if n == 1:
        return PARTIAL, MANIFEST
    return f"manifest.partial.shard-{k}-of-{n}.jsonl", f"manifest.shard-{k}-of-{n}.json"



def merge_shards(out_dir: Path, n: int) -> bool:
    """Write ``manifest.json`` from the n shard manifests once all are there; True if written."""
    parts = [Path(out_dir) / shard_names(k, n)[1] for k in range(n)]
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

