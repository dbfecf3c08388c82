"""GUE: a U-Net generator trained in a Stackelberg game against a victim classifier.

Solved with BOME (default) or TGDA; GUE-AT when the follower trains adversarially
(``--adv-eps``). The training itself lives in :mod:`unlearnable.training.generator`; this
module turns `train-generator` options into its settings and its files into protectors.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..budget import Budget
from ..errors import ConfigError
from ..io.genfile import load_generator
from ..models.unet import GENERATOR_PRESETS
from ..models.victims import VICTIMS
from ..robust import parse_robust
from ..training.generator import KEY_SOURCES, PRESETS, GeneratorTrainingConfig, train_generator
from ..models.pretrained import PRETRAINED
from .base import Method, TrainReport, register, small_cnn_encoder

SOLVERS = ("bome", "tgda")
_BOME = {"inner_steps"}  # options that go into the solvers' own settings
_TGDA = {"leader_steps", "follower_steps", "cg_steps", "cg_tol", "damping"}

# Options copied into the settings as given (after the checks in GueMethod.settings).
_PLAIN = ("epochs", "warmup_epochs", "batch_size", "generator", "victim", "label_aware", "luma", "block", "solver", "keys", "clusters",
          "max_minutes",
          "fraction", "max_images")


DEFAULT_ENCODER = "efficientnet-lite0"
ENCODER_CHOICES = (*PRETRAINED, "small-cnn", "colour")


def encoder_choice(choice: str | None) -> str | None:
    """--encoder -> what the key features come from: an ImageNet encoder's name, a file holding a
    trained encoder (small-cnn: the one that ships; builtin: its former name), or None (colours)."""
    if choice is None:
        return DEFAULT_ENCODER
    if choice in PRETRAINED:
        return choice
    if choice in ("small-cnn", "builtin"):
        found = small_cnn_encoder()
        if found is None:
            raise ConfigError("this installation has no small-cnn encoder file; use --encoder "
                              f"{DEFAULT_ENCODER}, colour or a file from `unlearnable train-encoder`")
        return str(found)
    if choice == "colour":
        return None
    if not Path(choice).is_file():
        raise ConfigError(f"--encoder {choice} is neither a file nor one of {', '.join(ENCODER_CHOICES)}")
    return choice


class GueMethod(Method):
    name = "gue"
    summary = "a generator: one forward pass protects any new picture"
    presets = tuple(PRESETS)
    options = frozenset(_PLAIN) | {"adv_eps", "encoder", "resume", "robust"} | _BOME | _TGDA
    file_methods = ("gue", "gue-at")
    written = "generator"

    def settings(self, preset: str, budget: Budget, image_size: int, seed: int, given: dict[str, Any]) -> GeneratorTrainingConfig:
        self.check_options(given)
        self.check_preset(preset)
        for option, value, allowed in (("solver", given.get("solver"), SOLVERS), ("keys", given.get("keys"), KEY_SOURCES),
                                       ("generator", given.get("generator"), tuple(GENERATOR_PRESETS)),
                                       ("victim", given.get("victim"), tuple(VICTIMS))):
            if value is not None and value not in allowed:
                raise ConfigError(f"unknown --{option} {value!r}; choose one of {', '.join(allowed)}")
        if given.get("clusters") is not None and given.get("keys", "clusters") != "clusters":
            raise ConfigError("--clusters goes with --keys clusters (folders gives one key per class)")
        overrides = {k: given[k] for k in _PLAIN if given.get(k) is not None}
        base = PRESETS[preset]
        overrides["bome"] = replace(base.bome, **{k: given[k] for k in _BOME if given.get(k) is not None})
        overrides["tgda"] = replace(base.tgda, **{k: given[k] for k in _TGDA if given.get(k) is not None})
        overrides.update(eps=budget.value, eps_text=budget.text, image_size=image_size, seed=seed,
                         encoder=encoder_choice(given.get("encoder")))
        if given.get("robust") is not None:
            overrides["robust"] = parse_robust(given["robust"])
        adv = given.get("adv_eps")
        if adv is not None:
            overrides.update(adv_eps=adv.value, adv_eps_text=adv.text)
        if "epochs" in overrides or "warmup_epochs" in overrides:
            overrides["min_steps"] = 0  # explicit epochs mean exactly that
        return replace(PRESETS[preset], **overrides)

    def train(self, data_dir, out, settings, device, *, resume=False, ctx=None, on_load=None, on_progress=None) -> TrainReport:
        def on_step(s: dict) -> None:
            info = f"{s['phase']} ep {s['epoch']}/{s['epochs']} J_c {s['J_c']:.3f}"
            if "lambda" in s:
                info += f" J_a {s['J_a']:.3f} λ {s['lambda']:.2f}"
            elif "cg" in s:
                info += f" J_a {s['J_a']:.3f} CG {s['cg']:.0f}"
            on_progress((s["epoch"] - 1) * s["steps_per_epoch"] + s["step"], s["epochs"] * s["steps_per_epoch"],
                        info + f" {s['images_per_s']:.0f} img/s")

        extra = {"ctx": ctx} if ctx is not None else {}
        def on_keys(done: int, total: int) -> None:
            on_progress(done, total, f"finding keys ({settings.encoder or 'colour'} features)")

        result = train_generator(data_dir, out, settings, device, resume=resume, on_load=on_load,
                                 on_step=on_step if on_progress else None, on_keys=on_keys if on_progress else None,
                                 **extra)
        return TrainReport(
            output=result.output, images=result.images, skipped=result.skipped, skipped_files=result.skipped_files,
            seconds=result.seconds,
            table={"keys": result.keys, "against": ", ".join(settings.robust) or "none",
                   "epochs": str(result.epochs_done), "steps": str(result.steps),
                   "images/s": f"{result.images_per_s:.0f}", "stopped early": "yes" if result.stopped_early else "no"},
            details={**result.to_dict(), "config": asdict(settings)},
        )

    def load(self, path: Path, device: torch.device | str = "cpu"):
        return load_generator(path, device)

    def benchmark_rows(self) -> dict[str, list[str]]:
        # keyed by class folder, as REM/EM/TAP must be, so the rows compare like with like
        base = ["--method", "gue", "--keys", "folders"]
        return {"gue-bome": base, "gue-tgda": base + ["--solver", "tgda"], "gue-at": base + ["--adv-eps", "4/255"]}


GUE = register(GueMethod())
