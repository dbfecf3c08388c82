"""The baselines that protect with a source model instead of a generator: REM, EM, TAP.

:func:`load_protector` opens any protection file (a GUE generator or a source model) and
returns one callable, ``protector(x, y) -> delta``, so `poison` treats every method alike.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import nn

from ..errors import GeneratorFileError
from ..io.genfile import GeneratorInfo, SourceModelInfo, load_generator
from .noise import NoiseSettings, defensive_noise

METHODS = ("gue", "rem", "em", "tap")

# The train-generator options each method reads; any other option given is refused, naming the
# method (a flag that is parsed and then ignored is worse than an error).
_COMMON = {"eps", "out", "preset", "image_size", "fraction", "max_images", "seed", "device", "json", "allow_visible"}
_GUE = {"epochs", "warmup_epochs", "inner_steps", "batch_size", "generator", "victim", "label_aware", "adv_eps",
        "solver", "leader_steps", "follower_steps", "cg_steps", "cg_tol", "damping", "keys", "clusters", "encoder",
        "max_minutes", "resume"}
METHOD_OPTIONS = {"gue": _COMMON | _GUE, "rem": _COMMON | {"iterations", "adv_eps"},
                  "em": _COMMON | {"iterations"}, "tap": _COMMON}


def unused_options(method: str, given: list[str]) -> list[str]:
    """The options in ``given`` (parameter names) that ``method`` does not read."""
    return [g for g in given if g not in METHOD_OPTIONS[method]]
DEFAULT_GENERATOR = "default.safetensors"  # in unlearnable/generators/, made by examples/train_default_generator.py


def default_generator() -> Path | None:
    """The generator that ships with the package, or None when this installation has none."""
    path = Path(str(resources.files("unlearnable") / "generators" / DEFAULT_GENERATOR))
    return path if path.is_file() else None


class NoiseProtector(nn.Module):
    """A source model and its noise optimisation, called like a generator: (x, y) -> delta."""

    def __init__(self, model: nn.Module, settings: NoiseSettings, seed: int = 0):
        super().__init__()
        self.model = model
        self.settings = settings
        self.seed = seed

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise ValueError(f"{self.settings.method} needs the class of every picture")
        sampler = torch.Generator().manual_seed(self.seed)  # the same noise for the same picture
        return defensive_noise(self.model, x, y, self.settings, sampler)


def load_protector(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, GeneratorInfo | SourceModelInfo]:
    """The file's protector on ``device`` and what the file says about itself."""
    model, info = load_generator(path, device)
    if isinstance(info, SourceModelInfo):
        try:
            settings = NoiseSettings(**info.noise)
        except TypeError:
            raise GeneratorFileError(f"{path} has noise settings this version does not know: "
                                     f"{sorted(info.noise)}; it was tampered with or needs a newer unlearnable") from None
        return NoiseProtector(model, settings), info
    return model, info
