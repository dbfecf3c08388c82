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
from ..attacks.noise import NoiseSettings, defensive_noise
from ..errors import ConfigError, GeneratorFileError
from ..io.genfile import load_generator
from ..training.source import SOURCE_PRESETS, SourceTrainingConfig, source_config, train_source_file
from .base import Method, Option, TrainReport, register


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

    def __init__(self, name: str, declared: tuple[Option, ...], summary: str):
        self.name, self.declared, self.summary = name, declared, summary

    def settings(self, preset: str, budget: Budget, image_size: int, seed: int, given: dict[str, Any]) -> SourceTrainingConfig:
        self.check_options(given)
        self.check_preset(preset)
        if given.get("epochs") is not None and given.get("iterations") is not None:
            raise ConfigError("give --epochs or --iterations, not both (both set how long the source model trains)")
        if given.get("epochs") is not None and given["epochs"] < 1:
            raise ConfigError(f"--method {self.name} needs --epochs of at least 1, not {given['epochs']}")
        overrides = {k: given[k] for k in ("iterations", "epochs", "fraction", "max_images") if given.get(k) is not None}
        if given.get("adv_eps") is not None:
            overrides["adv_eps"] = given["adv_eps"].value
        return source_config(preset, self.name, budget.value, budget.text, image_size=image_size, seed=seed, **overrides)

    def train(self, data_dir, out, settings, device, *, resume=False, ctx=None, on_load=None, on_progress=None) -> TrainReport:
        config = settings
        step = (lambda s: on_progress(s["step"], s["steps"], f"loss {s['loss']:.3f}")) if on_progress else None
        result = train_source_file(data_dir, out, config, device, on_load=on_load, on_step=step)
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


_EPOCHS = Option("epochs", int, "REM, EM, TAP: source-model epochs (passes over the pictures); default from the preset.", min=1)
_ITERATIONS = Option("iterations", int, "REM/EM: source-model SGD iterations instead of --epochs (cpu 200, paper 5000).", min=1)
_RHO_A = Option("adv_eps", Budget, "REM: rho_a, the adversarial radius of its source-model training (default eps/2).")

REM = register(NoiseMethod("rem", (_EPOCHS, _ITERATIONS, _RHO_A), "robust error-minimizing noise, per picture from a source model"))
EM = register(NoiseMethod("em", (_EPOCHS, _ITERATIONS), "error-minimizing noise, per picture from a source model"))
TAP = register(NoiseMethod("tap", (_EPOCHS,), "targeted adversarial poisoning, per picture from a clean model"))
