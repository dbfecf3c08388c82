"""Files this tool writes: atomically (a reader sees the old file or the whole new one), with
the user's usual permissions; and the SHA-256 of a file."""

from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..digest import sha256_file  # noqa: F401  (re-exported: poison and the tests hash files through io.files)

_umask_lock = threading.Lock()
_umask: list[int] = []


def _file_mode() -> int:
    """0666 under the user's umask, as open() would give (mkstemp's files are 0600)."""
    with _umask_lock:
        if not _umask:
            current = os.umask(0o022)
            os.umask(current)
            _umask.append(current)
    return 0o666 & ~_umask[0]


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """Yield a temporary file name beside ``path``; on success it replaces ``path`` in one step.

    Readers see the old file or the whole new one, never a part. On any error the temporary
    file is removed and ``path`` is untouched. The file gets the user's usual permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`), flushed to disk."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
