"""`unlearnable train-generator` and `train-encoder`: make the files `poison` applies."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..device import resolve_device, seed_everything
from ..methods import COMMON_OPTIONS, METHODS, get_method
from ..models.unet import GENERATOR_PRESETS
from ..models.victims import VICTIMS
from ..training.generator import PRESETS
from .common import budget_option, console, emit_json, error_boundary, progress_bar, rerun_hint
from .options import STOPPED, DeviceOpt, HelpOpt, ImageSizeOpt, JsonOpt, SeedOpt, setup
from .render import summary_table

# train-generator's method-specific options (parameter names): whatever a registered method reads
_METHOD_OPTIONS = frozenset().union(COMMON_OPTIONS, *(m.options for m in METHODS.values()))
_FLAGS = frozenset({"resume"})  # plain on/off flags: off is not a choice the user made


def method_options(values: dict) -> dict:
    """The options the user set that some method reads: None is unset, and so is an off flag.

    A two-way switch such as --label-aware/--image-only is a choice either way: False is kept.
    """
    return {name: value for name, value in values.items()
            if name in _METHOD_OPTIONS and value is not None and not (name in _FLAGS and value is False)}


def train_generator(
    data_dir: Path = typer.Argument(..., help="Folder of pictures, any layout (searched recursively); no labels needed."),
    eps: str = typer.Option("8/255", "--eps", help="L-inf budget on pixel values, e.g. 8/255 or 0.0314."),
    out: Path = typer.Option(Path("gen.safetensors"), "--out", help="Where to write the protection file (a generator for gue, a source model for rem, em, tap)."),
    preset: str = typer.Option("cpu", "--preset", help=f"Training recipe: {', '.join(PRESETS)} (cpu: minutes on a laptop; paper: the GUE paper's settings, for GPUs)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=0, help=f"Game epochs (BOME or TGDA); default from the preset (cpu: {PRESETS['cpu'].warmup_epochs} warm-up + {PRESETS['cpu'].epochs} game epochs, more on a small folder so that the run takes at least {PRESETS['cpu'].min_steps} outer steps)."),
    warmup_epochs: Optional[int] = typer.Option(None, "--warmup-epochs", min=0, help="Min-min warm-start epochs before the game; default from the preset."),
    inner_steps: Optional[int] = typer.Option(None, "--inner-steps", min=1, help="BOME inner steps T per outer step; default from the preset."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per outer step; default from the preset."),
    image_size: int = ImageSizeOpt,
    generator: Optional[str] = typer.Option(None, "--generator", help=f"U-Net size: {', '.join(GENERATOR_PRESETS)}; default from the preset."),
    victim: Optional[str] = typer.Option(None, "--victim", help=f"Follower architecture in the game: {', '.join(VICTIMS)}; default from the preset."),
    label_aware: Optional[bool] = typer.Option(None, "--label-aware/--image-only", metavar="", help="Generator sees the class, A(x, y) (cpu default), or only the picture, g(x) (paper)."),
    luma: Optional[bool] = typer.Option(None, "--luma/--colour", metavar="", help="Perturb brightness only, one pattern for R, G and B (a trainer's grayscale conversion keeps all of it, JPEG most of it), or each channel on its own (default)."),
    block: Optional[int] = typer.Option(None, "--block", min=1, max=64, help="Make the pattern constant over BLOCK x BLOCK pixel cells of the training size (low frequencies, which JPEG keeps); default 1 (every pixel its own)."),
    keys: Optional[str] = typer.Option(None, "--keys", help="Where the generator's key y comes from: clusters (K-means clusters of your pictures, no labels needed) or folders (class sub-folders, one per class)."),
    clusters: Optional[int] = typer.Option(None, "--clusters", min=2, max=1024, help="Number of K-means clusters (keys) with --keys clusters; default 10, fewer for folders under 200 pictures."),
    encoder: Optional[str] = typer.Option(None, "--encoder", help="Features the clusters are made in: efficientnet-lite0 (default: an ImageNet-trained network installed with the package), small-cnn (a small CNN trained on five CIFAR-10 classes, the default before), colour (mean colours on a grid), or a file from `unlearnable train-encoder`."),
    fraction: Optional[float] = typer.Option(None, "--fraction", min=0.0, max=1.0, help="Train on a seeded random fraction (0-1] of the pictures."),
    max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Train on at most this many pictures (seeded random subset)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", min=0.0, help="Stop after this many minutes of training and save what was learned."),
    method: str = typer.Option("gue", "--method", help="Protection method: " + "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()) + "."),
    adv_eps: Optional[str] = typer.Option(None, "--adv-eps", help="GUE-AT: L-inf radius of the TRADES follower, e.g. 4/255 (default 0); REM: rho_a (default eps/2)."),
    solver: Optional[str] = typer.Option(None, "--solver", help="Game solver for gue: bome (default) or tgda (total gradient descent ascent)."),
    leader_steps: Optional[int] = typer.Option(None, "--leader-steps", min=1, help="TGDA: generator steps m per round (default 1)."),
    follower_steps: Optional[int] = typer.Option(None, "--follower-steps", min=0, help="TGDA: victim steps n per round (default 1; the paper's 20 is 20x slower)."),
    cg_steps: Optional[int] = typer.Option(None, "--cg-steps", min=1, help="TGDA: conjugate-gradient iterations per total derivative (default 10)."),
    cg_tol: Optional[float] = typer.Option(None, "--cg-tol", min=0.0, help="TGDA: stop CG at this relative residual (default 1e-4)."),
    damping: Optional[float] = typer.Option(None, "--damping", min=0.0, help="TGDA: added to the Hessian's diagonal (default 0.1)."),
    robust: Optional[str] = typer.Option(None, "--robust", help="The trainer's preprocessing to train against, inside the game (gue): none, all, or a comma-separated list of jpeg, grayscale, resize, blur, bits; default from the preset (cpu: grayscale; paper presets: none). Adversarial training is --adv-eps."),
    iterations: Optional[int] = typer.Option(None, "--iterations", min=1, help="REM/EM: source-model SGD iterations (cpu 200, paper 5000)."),
    allow_visible: bool = typer.Option(False, "--allow-visible", metavar="", help="Accept an --eps above 16/255 (the perturbation will show)."),
    seed: int = SeedOpt,
    resume: bool = typer.Option(False, "--resume", metavar="", help="Continue an interrupted run from <out>.ckpt (gue)."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Train a protection on a folder of pictures: a GUE generator (BOME or TGDA; GUE-AT with --adv-eps) or a REM/EM/TAP source model (these need class folders)."""
    budget = budget_option(eps, allow_visible=allow_visible)
    given = method_options(locals())
    if adv_eps is not None:
        given["adv_eps"] = budget_option(adv_eps, allow_zero=True, name="--adv-eps")
    with error_boundary(json_out, rerun_hint("--resume")):
        chosen = get_method(method)
        settings = chosen.settings(preset, budget, image_size, seed, given)
        dev, ctx = setup(seed, device)
        with progress_bar("training", quiet=not ctx.is_main) as bar:
            load = bar.add_task("reading pictures", total=None, info="")
            task = bar.add_task(f"training the {chosen.written}", total=None, info="", visible=False)
            report = chosen.train(
                data_dir, out, settings, dev, resume=resume, ctx=ctx,
                on_load=lambda d, t: bar.update(load, completed=d, total=t),
                on_progress=lambda d, t, info: bar.update(task, completed=d, total=t, visible=True, info=info),
            )
        if not ctx.is_main:
            return
        for s in report.skipped_files:
            console.print(f"[yellow]skipped[/] {s['path']}: {s['reason']}", highlight=False)
        title = f"protection file ({chosen.written}) written to {report.output}" + (f" ({ctx.world} processes)" if ctx.active else "")
        columns = {"images": str(report.images), "skipped": str(report.skipped), **report.table,
                   "minutes": f"{report.seconds / 60:.1f}"}
        console.print(summary_table(title, columns))
        if report.details.get("key_hint"):
            console.print(report.details["key_hint"])
        if report.details.get("stopped_early"):
            console.print("stopped at --max-minutes: the file holds what was learned by then")
        if json_out:
            emit_json({**report.to_dict(), "method": chosen.name, "device": str(dev)})


def train_encoder(
    data_dir: Path = typer.Argument(..., help="Labelled folder: one sub-folder of pictures per class (any classes; they need not be yours)."),
    out: Path = typer.Option(Path("encoder.safetensors"), "--out", help="Where to write the encoder file."),
    epochs: int = typer.Option(15, "--epochs", min=1, help="Training epochs."),
    image_size: int = ImageSizeOpt,
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Train a feature encoder whose clusters key a label-free generator (train-generator --encoder)."""
    with error_boundary(json_out, STOPPED):
        from ..training.encoder import EncoderTrainingConfig, train_encoder as train

        seed_everything(seed)
        dev = resolve_device(device)
        config = EncoderTrainingConfig(epochs=epochs, image_size=image_size, seed=seed)
        with progress_bar("training") as bar:
            load = bar.add_task("reading pictures", total=None, info="")
            task = bar.add_task("training the encoder", total=epochs, info="")
            result = train(
                data_dir, out, config, dev, on_load=lambda d, t: bar.update(load, completed=d, total=t),
                on_epoch=lambda r: bar.update(task, completed=r["epoch"], info=f"held-out acc {r['test_accuracy']:.3f}"),
            )
        console.print(summary_table(f"encoder written to {result.output}", {
            "images": str(result.images), "classes": str(result.classes),
            "held-out accuracy": f"{result.holdout_accuracy:.2%}", "minutes": f"{result.seconds / 60:.1f}"}))
        if json_out:
            emit_json(result.to_dict())
