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
from .io.files import atomic_write_bytes

PROJECT_FILE = ".unlearnable.json"


KEYS = ("protected", "clean", "test")  # the only entries; each an absolute folder path


def load_project(cwd: Path | None = None) -> dict:
    """The remembered folders, validated: a damaged or foreign file is refused, never trusted."""
    path = (cwd or Path.cwd()) / PROJECT_FILE
    if not path.exists():
        return {}
    fix = f"delete {path} (it only remembers folder paths) or pass the folders explicitly"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        raise UnlearnableError(f"{path} is damaged; {fix}") from None
    if not isinstance(data, dict) or data.get("made_by", "unlearnable") != "unlearnable":
        raise UnlearnableError(f"{path} was not written by unlearnable; {fix}")  # (files of 0.1.0 had no made_by)
    folders = {k: v for k, v in data.items() if k != "made_by"}
    for key, value in folders.items():
        if key not in KEYS or not isinstance(value, str) or not value or not Path(value).is_absolute():
            raise UnlearnableError(f"{path} has an unexpected entry {key!r}; {fix}")
    return folders


def remember(updates: dict, cwd: Path | None = None) -> None:
    data = load_project(cwd)
    data.update({k: str(Path(v).resolve()) for k, v in updates.items() if v is not None})
    payload = {"made_by": "unlearnable", **data}
    atomic_write_bytes((cwd or Path.cwd()) / PROJECT_FILE, json.dumps(payload, indent=1).encode())


def training_folders(protected: Path | None, test: Path | None, clean: Path | None,
                     cwd: Path | None = None) -> tuple[Path, Path | None, Path | None]:
    """The folders `evaluate` and `defend` train on: explicit paths win, then the remembered ones.

    No test folder given but the originals given (``--clean``), or no test folder at all: None,
    a held-out share of the originals is the test set. A remembered test folder stands in only
    when neither ``--test`` nor ``--clean`` was given, so the README's held-out command means
    the same in every working directory.
    """
    clean_given = clean is not None
    project = load_project(cwd)
    if protected is None:
        if "protected" not in project:
            raise UnlearnableError("no PROTECTED_DIR given and no earlier `unlearnable poison` run here; pass the folder")
        protected = Path(project["protected"])
        clean = clean or (Path(project["clean"]) if "clean" in project else None)
    if test is None and not clean_given:
        if "test" in project:
            test = Path(project["test"])
        elif clean is None:
            raise UnlearnableError("pass --test DIR (a labelled folder of clean test pictures; it is remembered "
                                   "afterwards), or --clean ORIGINALS to test on a held-out fifth of your own pictures")
    return protected, test, clean
