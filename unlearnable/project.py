"""A small per-project memory, ``.unlearnable.json`` in the working directory.

`poison` records the folder it protected and where the result went; `evaluate` records the
test folder it was given. So the natural workflow

    unlearnable poison ./photos --gen gen.safetensors
    unlearnable evaluate --test ./test          # once
    unlearnable evaluate --adv-eps 4/255        # afterwards

needs no repeated paths. Explicit paths always win.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UnlearnableError
from .io.images import atomic_write_bytes

PROJECT_FILE = ".unlearnable.json"


def load_project(cwd: Path | None = None) -> dict:
    path = (cwd or Path.cwd()) / PROJECT_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        raise UnlearnableError(f"{path} is damaged; delete it (it only remembers folder paths)") from None
    return data if isinstance(data, dict) else {}


def remember(updates: dict, cwd: Path | None = None) -> None:
    data = load_project(cwd)
    data.update({k: str(Path(v).resolve()) for k, v in updates.items() if v is not None})
    atomic_write_bytes((cwd or Path.cwd()) / PROJECT_FILE, json.dumps(data, indent=1).encode())
