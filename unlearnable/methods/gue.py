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
from ..robust import ROBUST, parse_robust
from ..training.generator import (CPU_GAME_SCHEDULE, KEY_SOURCES, PRESETS, GeneratorTrainingConfig, check_pattern_keys,
                                  train_generator)
from ..models.pretrained import PRETRAINED
from .base import COMMON, Method, Option, TrainReport, register, small_cnn_encoder
from .candidates import AUTO, AUTO_PICTURES, how_many, train_candidates

SOLVERS = ("bome", "tgda")
_BOME = {"inner_steps"}  # options that go into the solvers' own settings
_TGDA = {"leader_steps", "follower_steps", "cg_steps", "cg_tol", "damping"}



DEFAULT_ENCODER = "efficientnet-lite2"
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
            raise ConfigError("the built-in generator no longer carries a small-cnn encoder; make one with "
                              "`unlearnable train-encoder LABELLED_DIR` and pass --encoder FILE, or use --encoder "
                              f"{DEFAULT_ENCODER} or colour")
        return str(found)
    if choice == "colour":
        return None
    if not Path(choice).is_file():
        raise ConfigError(f"--encoder {choice} is neither a file nor one of {', '.join(ENCODER_CHOICES)}")
    return choice


def _asks_for_game(given: dict[str, Any]) -> bool:
    """An option that only the game reads: the solver, its settings, or GUE-AT's follower radius."""
    adv = given.get("adv_eps")
    return (any(given.get(k) is not None for k in ("solver", *_BOME, *_TGDA))
            or (adv is not None and adv.value > 0))


_CPU = PRESETS["cpu"]
# train-generator's options for gue, in --help order (the CLI makes the flags from these).
GUE_OPTIONS = (
    Option("epochs", int, f"How long to train: GUE, game epochs (BOME or TGDA); default from the preset (cpu: "
           f"{_CPU.warmup_epochs} warm-up epochs and no game, or {CPU_GAME_SCHEDULE[0]} + {CPU_GAME_SCHEDULE[1]} with "
           f"--solver, --adv-eps or a solver's setting; more on a small folder so that the run takes at least "
           f"{_CPU.min_steps} outer steps).", min=0),
    Option("warmup_epochs", int, "Min-min warm-start epochs before the game; default from the preset.", min=0),
    Option("inner_steps", int, "BOME inner steps T per outer step; default from the preset.", min=1),
    Option("batch_size", int, "Images per outer step; default from the preset.", min=1),
    Option("generator", str, "The generator: small or paper (U-Nets that see each picture and its key), or patterns "
           "(one learned pattern per key, the same for all of a key's pictures; needs keys); default from the preset."),
    Option("victim", str, f"Follower architecture in the game: {', '.join(VICTIMS)}; default from the preset."),
    Option("label_aware", bool, "Generator sees the class, A(x, y) (cpu default), or only the picture, g(x) (paper).",
           flag="--label-aware/--image-only"),
    Option("luma", bool, "Perturb brightness only, one pattern for R, G and B (a trainer's grayscale conversion keeps "
           "all of it, JPEG most of it), or each channel on its own (default).", flag="--luma/--colour"),
    Option("block", int, "Make the pattern constant over BLOCK x BLOCK pixel cells of the training size (low "
           "frequencies, which JPEG keeps); default 1 (every pixel its own).", min=1, max=64),
    Option("keys", str, "Where the generator's key y comes from: clusters (K-means clusters of your pictures, no "
           "labels needed) or folders (class sub-folders, one per class)."),
    Option("clusters", int, "Number of K-means clusters (keys) with --keys clusters; default 10, fewer for folders "
           "under 200 pictures.", min=2, max=1024),
    Option("kmeans_starts", int, "K-means starts with --keys clusters (k-means++ seeds --seed, --seed + 1, ...; the "
           "clustering that fits the features best is kept); default from the preset.", min=1, max=100),
    Option("key_neighbours", int, "With --keys clusters: refine the K-means clusters so that each picture shares its "
           "key with its nearest neighbours in the features (this many; 0: K-means alone); default from the preset.",
           min=0, max=200),
    Option("encoder", str, f"Features the clusters are made in: {DEFAULT_ENCODER} (default: an ImageNet-trained "
           "network installed with the package), efficientnet-lite0 (a smaller one: faster, less pure keys; "
           "the default before), small-cnn (a small CNN trained on five CIFAR-10 classes), colour (mean colours on a "
           "grid), or a file from `unlearnable train-encoder`."),
    Option("feature_push", str, "Also move each picture's features in an ImageNet network towards those of another "
           f"key's pictures ({', '.join(PRETRAINED)}; none: off, the default), against a trainer who starts from a "
           "pretrained network rather than from scratch: such a trainer then learns each key's content from another's "
           "features. Costs time; works in the min-min epochs (the cpu preset's only phase)."),
    Option("max_minutes", float, "Stop after this many minutes of training and save what was learned.", min=0.0),
    Option("adv_eps", Budget, "GUE-AT: L-inf radius of the TRADES follower, e.g. 4/255 (default 0)."),
    Option("solver", str, "Game solver for gue: bome (default) or tgda (total gradient descent ascent)."),
    Option("leader_steps", int, "TGDA: generator steps m per round (default 1).", min=1),
    Option("follower_steps", int, "TGDA: victim steps n per round (default 1; the paper's 20 is 20x slower).", min=0),
    Option("cg_steps", int, "TGDA: conjugate-gradient iterations per total derivative (default 10).", min=1),
    Option("cg_tol", float, "TGDA: stop CG at this relative residual (default 1e-4).", min=0.0),
    Option("damping", float, "TGDA: added to the Hessian's diagonal (default 0.1).", min=0.0),
    Option("robust", str, "The trainer's preprocessing to train against, inside the game (gue): none, all, or a "
           f"comma-separated list of {', '.join(ROBUST)} (as `defend` names them); default from the preset (cpu: grayscale; "
           "paper presets: none). Adversarial training is --adv-eps."),
    Option("candidates", int, "Start this many generators (seeds --seed, --seed + 1, ...), train each for a quarter of "
           "its run, and finish only the one a check without labels finds strongest: a small CNN trained on the "
           "pictures as each protects them, labelled by clusters of another ImageNet network's features (as "
           "`evaluate --auto-labels clusters`). Seeds differ much in protection, and the difference shows that "
           f"early; N candidates take about 1 + N/4 times one run, plus the check. Default (cpu preset): {AUTO} on a "
           f"folder of {AUTO_PICTURES:,} pictures or more with cluster keys, else 1; --candidates 1 trains one "
           "generator.",
           min=1, max=10),
    Option("resume", bool, "Continue an interrupted run from <out>.ckpt (gue)."),
)
# Options copied into the settings as given (after the checks in GueMethod.settings): every
# declared one but those the solvers nest, those parsed first, and resume (an argument of train).
_PLAIN = tuple(o.name for o in (*COMMON, *GUE_OPTIONS)
               if o.name not in _BOME | _TGDA | {"adv_eps", "encoder", "robust", "resume", "feature_push"})


class GueMethod(Method):
    name = "gue"
    summary = "a generator: one forward pass protects any new picture"
    presets = tuple(PRESETS)
    declared = GUE_OPTIONS
    file_methods = ("gue", "gue-at")
    written = "generator"

    def settings(self, preset: str, budget: Budget, image_size: int, seed: int, given: dict[str, Any]) -> GeneratorTrainingConfig:
        self.check_options(given)
        self.check_preset(preset)
        for option, value, allowed in (("solver", given.get("solver"), SOLVERS), ("keys", given.get("keys"), KEY_SOURCES)):
            if value is not None and value not in allowed:
                raise ConfigError(f"unknown --{option} {value!r}; choose one of {', '.join(allowed)}")
        for registry, option in ((GENERATOR_PRESETS, "generator"), (VICTIMS, "victim")):
            if given.get(option) is not None:
                registry.get(given[option], f"--{option}")  # an unknown name is refused, with the list
        if given.get("clusters") is not None and given.get("keys", "clusters") != "clusters":
            raise ConfigError("--clusters goes with --keys clusters (folders gives one key per class)")
        if given.get("kmeans_starts") is not None and given.get("keys", "clusters") != "clusters":
            raise ConfigError("--kmeans-starts goes with --keys clusters (folders fits no K-means)")
        if given.get("key_neighbours") is not None and given.get("keys", "clusters") != "clusters":
            raise ConfigError("--key-neighbours goes with --keys clusters (folders fits no clusters)")
        overrides = {k: given[k] for k in _PLAIN if given.get(k) is not None}
        base = PRESETS[preset]
        overrides["bome"] = replace(base.bome, **{k: given[k] for k in _BOME if given.get(k) is not None})
        overrides["tgda"] = replace(base.tgda, **{k: given[k] for k in _TGDA if given.get(k) is not None})
        overrides.update(eps=budget.value, eps_text=budget.text, image_size=image_size, seed=seed,
                         encoder=encoder_choice(given.get("encoder")))
        if given.get("robust") is not None:
            overrides["robust"] = parse_robust(given["robust"])
        push = given.get("feature_push")
        if push is not None:
            if push != "none" and push not in PRETRAINED:
                raise ConfigError(f"unknown --feature-push {push!r}; choose one of {', '.join(PRETRAINED)} or none")
            overrides["feature_push"] = None if push == "none" else push
        adv = given.get("adv_eps")
        if adv is not None:
            overrides.update(adv_eps=adv.value, adv_eps_text=adv.text)
        if "epochs" in overrides or "warmup_epochs" in overrides:
            overrides["min_steps"] = 0  # explicit epochs mean exactly that
        elif base.epochs == 0 and _asks_for_game(given):
            overrides["warmup_epochs"], overrides["epochs"] = CPU_GAME_SCHEDULE
        settings = replace(PRESETS[preset], **overrides)
        check_pattern_keys(settings)
        return settings

    def train(self, data_dir, out, settings, device, *, resume=False, ctx=None, on_load=None, on_progress=None,
              pause_after: float | None = None, shared_features: dict | None = None,
              on_key_progress=None) -> TrainReport:
        """``pause_after``: stop at that fraction of the run, keeping its checkpoint; ``shared_features``:
        the key features of runs on the same pictures (train_generator); ``on_key_progress``: where finding
        the keys reports, if not to ``on_progress`` (which then hears of the game's steps only)."""
        n = how_many(settings, data_dir, ctx)
        if n > 1:
            return train_candidates(self, data_dir, Path(out), replace(settings, candidates=n), device, resume=resume,
                                    ctx=ctx, on_load=on_load, on_progress=on_progress)
        settings = replace(settings, candidates=1)
        def on_step(s: dict) -> None:
            info = f"{s['phase']} ep {s['epoch']}/{s['epochs']} J_c {s['J_c']:.3f}"
            if "push" in s:
                info += f" push {s['push']:.2f}"
            if "lambda" in s:
                info += f" J_a {s['J_a']:.3f} λ {s['lambda']:.2f}"
            elif "cg" in s:
                info += f" J_a {s['J_a']:.3f} CG {s['cg']:.0f}"
            on_progress((s["epoch"] - 1) * s["steps_per_epoch"] + s["step"], s["epochs"] * s["steps_per_epoch"],
                        info + f" {s['images_per_s']:.0f} img/s")

        extra = {"ctx": ctx} if ctx is not None else {}
        def on_keys(done: int, total: int) -> None:
            (on_key_progress or on_progress)(done, total, f"finding keys ({settings.encoder or 'colour'} features)")

        def on_push(done: int, total: int) -> None:
            (on_key_progress or on_progress)(done, total, f"features to push ({settings.feature_push or settings.push_network})")

        result = train_generator(data_dir, out, settings, device, resume=resume, on_load=on_load,
                                 on_step=on_step if on_progress else None, on_keys=on_keys if on_progress else None,
                                 on_push=on_push if on_progress else None,
                                 pause_after=pause_after, shared_features=shared_features, **extra)
        return TrainReport(
            output=result.output, images=result.images, skipped=result.skipped, skipped_files=result.skipped_files,
            seconds=result.seconds,
            table={"keys": result.keys, "follower": settings.victim, "against": ", ".join(settings.robust) or "none",
                   **({"feature push": settings.feature_push} if settings.feature_push else {}),
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
