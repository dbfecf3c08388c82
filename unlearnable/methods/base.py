"""What every protection method is: the :class:`Method` interface and the registry.

A method declares its name, the `train-generator` options it reads beyond the common ones,
its presets, how those options become its settings, how it trains a protection file, and how
a protection file becomes a protector callable ``(x, y) -> delta`` for `poison`. The CLI,
`--help`, `poison` and the benchmark scripts take the list of methods from :data:`METHODS`;
adding a method is one new module that calls :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..budget import Budget
from ..errors import ConfigError, GeneratorFileError
from ..io.genfile import file_method
from ..registry import Registry


@dataclass(frozen=True)
class Option:
    """One `train-generator` option a method reads, declared where the method lives.

    The CLI makes the flag from this (``unlearnable/cli/train_cmd.py``); the method reads the
    value as ``given[name]`` in :meth:`Method.settings` (absent when the user did not set it).
    ``kind`` is int, float, str, bool (a flag, or a two-way switch when ``flag`` has a slash) or
    :class:`~unlearnable.budget.Budget` (a budget such as 4/255, given already parsed).
    """

    name: str  # parameter name; the flag is --name-with-dashes unless ``flag`` says otherwise
    kind: type
    help: str
    flag: str | None = None  # e.g. "--label-aware/--image-only"
    min: float | None = None
    max: float | None = None

    @property
    def flags(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def switch(self) -> bool:
        """A bool that is set either way (--a/--b): off is a choice too."""
        return self.kind is bool and "/" in self.flags


# Options every method reads.
COMMON = (
    Option("fraction", float, "Train on a seeded random fraction (0-1] of the pictures.", min=0.0, max=1.0),
    Option("max_images", int, "Train on at most this many pictures (seeded random subset).", min=1),
)
COMMON_OPTIONS = frozenset(o.name for o in COMMON)

OnLoad = Callable[[int, int], None]  # (pictures read, pictures in all)
OnProgress = Callable[[int, int, str], None]  # (steps done, steps in all, one line of state)


@dataclass
class TrainReport:
    """What training wrote, the same shape for every method."""

    output: str
    images: int
    skipped: int
    seconds: float
    table: dict[str, str] = field(default_factory=dict)  # extra summary columns, in order
    skipped_files: list[dict] = field(default_factory=list)  # {"path", "reason"} of each picture left out
    details: dict[str, Any] = field(default_factory=dict)  # everything else, for --json

    def to_dict(self) -> dict:
        return {"output": self.output, "images": self.images, "skipped": self.skipped,
                "skipped_files": self.skipped_files, "seconds": self.seconds, **self.details}


class Method:
    """One protection method. Subclasses set the class attributes and implement the three steps."""

    name: str = ""
    summary: str = ""  # one line for --help
    presets: tuple[str, ...] = ("cpu",)
    declared: tuple[Option, ...] = ()  # train-generator options read beyond COMMON
    file_methods: tuple[str, ...] = ()  # the `method` values of the files it reads (default: its name)
    written: str = "protection file"  # what train-generator writes, in messages

    @property
    def options(self) -> frozenset[str]:
        """The names of the options this method reads beyond COMMON (a subclass may list names
        that another method declares)."""
        return frozenset(o.name for o in self.declared)

    def check_options(self, given: dict[str, Any]) -> None:
        """Refuse options this method does not read, naming it."""
        if given.get("fraction") is not None and not 0 < given["fraction"] <= 1:
            raise ConfigError(f"--fraction must be in (0, 1], not {given['fraction']}")
        unused = sorted(set(given) - self.options - COMMON_OPTIONS)
        if unused:
            flags = ", ".join("--" + u.replace("_", "-") for u in unused)
            raise ConfigError(f"--method {self.name} does not use {flags}; remove {'it' if len(unused) == 1 else 'them'} "
                              "(see `unlearnable train-generator --help`)")

    def settings(self, preset: str, budget: Budget, image_size: int, seed: int, given: dict[str, Any]) -> Any:
        """The settings for this run: ``preset`` with the options the user ``given`` (non-default only)."""
        raise NotImplementedError

    def train(self, data_dir: Path, out: Path, settings: Any, device: torch.device, *, resume: bool = False,
              ctx=None, on_load: OnLoad | None = None, on_progress: OnProgress | None = None) -> TrainReport:
        """Train on ``data_dir`` and write the protection file ``out``."""
        raise NotImplementedError

    def load(self, path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Any]:
        """The protector in file ``path`` (``(x, y) -> delta``, eval mode) and the file's info.

        The info has at least ``eps``, ``eps_text``, ``image_size``, ``class_names`` and
        ``needs_labels``; ``config.keys`` (or None) if the protector keys pictures itself.
        """
        raise NotImplementedError

    def benchmark_rows(self) -> dict[str, list[str]]:
        """Rows of `examples/methods_benchmark.py`: row name -> train-generator arguments."""
        return {self.name: ["--method", self.name]}

    def check_preset(self, preset: str) -> None:
        if preset not in self.presets:
            raise ConfigError(f"--method {self.name} has presets {', '.join(self.presets)}, not {preset!r}")


DEFAULT_GENERATOR = "default.safetensors"  # in unlearnable/generators/, made by examples/train_default_generator.py


def _shipped(name: str) -> Path | None:
    path = Path(str(resources.files("unlearnable") / "generators" / name))
    return path if path.is_file() else None


def default_generator() -> Path | None:
    """The generator that ships with the package, or None when this installation has none."""
    return _shipped(DEFAULT_GENERATOR)


def small_cnn_encoder() -> Path | None:
    """The file whose small-CNN key model ``--encoder small-cnn`` uses: the built-in generator
    while its keys are small-CNN ones (a keyed generator is an encoder file too), else None."""
    import json

    from safetensors import safe_open

    path = default_generator()
    if path is None:
        return None
    with safe_open(str(path), framework="pt") as fh:
        config = json.loads((fh.metadata() or {}).get("unlearnable.config", "{}"))
    keys = config.get("keys") if isinstance(config, dict) else None
    return path if isinstance(keys, dict) and keys.get("encoder") == "small-cnn" else None


METHODS: Registry[Method] = Registry("method")


def register(method: Method) -> Method:
    """Add a method to the registry (a later registration of the same name replaces it)."""
    return METHODS.register(method.name, method)


def get_method(name: str) -> Method:
    return METHODS.get(name)


def load_protector(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Any]:
    """Any protection file's protector on ``device``, by the method recorded in the file."""
    recorded = file_method(path)
    for method in METHODS.values():
        if recorded in (method.file_methods or (method.name,)):
            return method.load(path, device)
    raise GeneratorFileError(f"{path} was made by method {recorded!r}, which this version cannot run "
                             f"(it runs {', '.join(METHODS)}); upgrade unlearnable")
