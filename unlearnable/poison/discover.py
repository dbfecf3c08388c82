"""Which pictures to protect, under which output names, with which classes."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..io.codec import open_picture
from .config import SUFFIX


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



def header_pixels(path: Path) -> int:
    """Width x height from the file's header without decoding it; 0 when unreadable."""
    try:
        with open_picture(path) as img:
            return img.width * img.height
    except Exception:  # noqa: BLE001 - any failure is reported when the file is decoded
        return 0

