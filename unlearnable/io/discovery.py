"""Finding the pictures in a folder of any layout: which files are pictures, which are not
and why (camera RAW, HEIC without its reader, broken links, devices), in a stable order."""

from __future__ import annotations

import importlib.util
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import DataError

# iPhones and many Android phones save HEIC; pillow-heif teaches Pillow to read it (a
# dependency, registered on first use rather than at import; a broken install still runs)
_HEIF = (".heic", ".heif") if importlib.util.find_spec("pillow_heif") else ()
_AVIF = (".avif",) if ".avif" in Image.registered_extensions() else ()  # newer Pillow wheels

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif") + _HEIF + _AVIF

# Formats a photographer keeps that this installation cannot read, with what to do about it:
# reported as skipped, never silently passed over.
_RAW = (".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".dng", ".raf", ".orf", ".rw2",
        ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".erf", ".kdc", ".mrw", ".raw")
UNREADABLE = {
    **{suffix: "a camera RAW file: export it as JPEG or TIFF first" for suffix in _RAW},
    **{suffix: "HEIC needs pillow-heif (pip install pillow-heif), or export it as JPEG"
       for suffix in (".heic", ".heif") if suffix not in _HEIF},
    ".jxl": "JPEG XL cannot be read here: export it as JPEG or PNG first",
    **({} if _AVIF else {".avif": "AVIF needs a newer Pillow (pip install -U pillow)"}),
}

@dataclass(frozen=True)
class Skipped:
    """A file that could not be used, with a reason a person can act on."""

    path: str
    reason: str


def check_folder(root: Path) -> Path:
    """``root`` as a Path if it is an existing folder; otherwise a DataError saying what to do."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"folder {root} does not exist; check the path")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass the folder that holds your pictures")
    return root


def list_images(root: Path, skipped: list[Skipped] | None = None) -> list[Path]:
    """Every regular file under ``root`` with an image suffix, recursively, in a stable order.

    Broken links, folders named like pictures, devices and FIFOs (reading one could hang
    forever), and photo formats that cannot be read here (camera RAW, ...) are left out; with
    ``skipped`` given, each is appended to it once with a reason.
    """
    root = check_folder(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames + [d for d in dirnames if d.lower().endswith(IMAGE_SUFFIXES)]:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if not name.lower().endswith(IMAGE_SUFFIXES):
                if skipped is not None and path.suffix.lower() in UNREADABLE:
                    skipped.append(Skipped(path.relative_to(root).as_posix(), UNREADABLE[path.suffix.lower()]))
                continue
            reason = _not_a_regular_file(path)
            if reason is None:
                found.append(path)
            elif skipped is not None:
                skipped.append(Skipped(path.relative_to(root).as_posix(), reason))
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    if skipped is not None:
        skipped.sort(key=lambda s: s.path)
    return found


def no_pictures(root: Path, skipped: list[Skipped], where: str = "in ") -> DataError:
    """The error for a folder with nothing to read, naming what was found instead if anything."""
    readable = ", ".join(IMAGE_SUFFIXES)
    if skipped:
        first = skipped[0]
        return DataError(f"no readable pictures {where}{root}: {len(skipped)} file(s) skipped, e.g. {first.path} "
                         f"({first.reason}); readable: {readable}")
    return DataError(f"no pictures found {where}{root} (looked for files ending in {readable})")


def _not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a picture, or None if it is a regular file."""
    try:
        mode = path.stat().st_mode  # follows links
    except OSError:
        return "broken link (its target does not exist)" if path.is_symlink() else "cannot be read"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder named like a picture"
    return "not a regular file (a device, FIFO or socket); reading it could hang"
