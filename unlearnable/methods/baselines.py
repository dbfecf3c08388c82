"""REM, EM and TAP: the baselines that protect with a source model instead of a generator.

`train-generator --method rem|em|tap` trains the source model (:mod:`.source`); `poison`
recomputes the defensive noise of every new picture with it (:class:`NoiseProtector`), so
these methods need the class of every picture (class sub-folders).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..budget import Budget
from ..errors import GeneratorFileError
from ..io.genfile import load_generator
from .base import Method, TrainReport, register
from .noise import NoiseSettings, defensive_noise
from .source import SOURCE_PRESETS, source_config, train_source_file


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


class NoiseMethod(Method):
    """One of REM, EM, TAP: the same training and loading, different noise settings."""

    presets = tuple(SOURCE_PRESETS)
    written = "source model"

    def __init__(self, name: str, options: set[str], summary: str):
        self.name, self.options, self.summary = name, frozenset(options), summary

    def settings(self, preset: str, budget: Budget, image_size: int, seed: int, given: dict[str, Any]):
        self.check_options(given)
        self.check_preset(preset)
        overrides = {"image_size": image_size, "seed": seed}
        if given.get("iterations") is not None:
            overrides["iterations"] = given["iterations"]
        if given.get("adv_eps") is not None:
            overrides["adv_eps"] = given["adv_eps"].value
        config = source_config(preset, self.name, budget.value, budget.text, **overrides)
        return config, given.get("fraction"), given.get("max_images")

    def train(self, data_dir, out, settings, device, *, resume=False, ctx=None, on_load=None, on_progress=None) -> TrainReport:
        config, fraction, max_images = settings
        step = (lambda s: on_progress(s["step"], s["steps"], f"loss {s['loss']:.3f}")) if on_progress else None
        result = train_source_file(data_dir, out, config, device, fraction, max_images, on_load=on_load, on_step=step)
        return TrainReport(output=result["output"], images=result["images"], skipped=result["skipped"],
                           skipped_files=result["skipped_files"],
                           seconds=result["seconds"], table={"source model": config.arch},
                           details={**result, "config": asdict(config)})

    def load(self, path: Path, device: torch.device | str = "cpu"):
        model, info = load_generator(path, device)
        try:
            settings = NoiseSettings(**info.noise)
        except (TypeError, AttributeError):
            raise GeneratorFileError(f"{path} has noise settings this version does not know; "
                                     "it was tampered with or needs a newer unlearnable") from None
        return NoiseProtector(model, settings), info


REM = register(NoiseMethod("rem", {"iterations", "adv_eps"}, "robust error-minimizing noise, per picture from a source model"))
EM = register(NoiseMethod("em", {"iterations"}, "error-minimizing noise, per picture from a source model"))
TAP = register(NoiseMethod("tap", set(), "targeted adversarial poisoning, per picture from a clean model"))
