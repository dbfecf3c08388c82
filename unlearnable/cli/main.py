"""`unlearnable`: protect image folders from unauthorized training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import typer

from .. import __version__
from .. import distributed
from ..device import DEVICE_CHOICES, resolve_device, seed_everything
from ..distributed import local_device
from ..defenses import DEFENSES, build_defenses
from ..errors import UnlearnableError
from ..evaluate import EvaluationConfig, evaluate_protection, save_report, training_kind
from ..poison import PoisonConfig, parse_shard, protect_folder
from ..project import remember, training_folders
from ..models.unet import GENERATOR_PRESETS
from ..methods import COMMON_OPTIONS, METHODS, default_generator, get_method
from ..models.victims import VICTIMS
from ..training.generator import PRESETS
from ..training.victim import RECIPES, victim_recipe
from .common import budget_option, console, emit_json, error_boundary, progress_bar, rerun_hint
from .render import defend_table, demo_table, evaluate_table, poison_table, summary_table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Protect image folders from unauthorized training with imperceptible perturbations.",
    context_settings={"help_option_names": []},  # our own --help (HelpOpt): a flag without a <bool> placeholder
)

DeviceOpt = typer.Option("auto", "--device", help=f"Where to compute: {'|'.join(DEVICE_CHOICES)} (auto: cuda, mps, cpu).")
def _help(ctx: typer.Context, value: bool) -> None:
    if value:
        typer.echo(ctx.get_help(), nl=False)
        raise typer.Exit()


HelpOpt = typer.Option(False, "--help", "-h", metavar="", is_eager=True, callback=_help, expose_value=False,
                       help="Show this message and exit.")
JsonOpt = typer.Option(False, "--json", metavar="", help="Print exactly one JSON object on stdout (human output stays on stderr).")


def _setup(seed: int, device: str) -> tuple[torch.device, distributed.Context]:
    """Seed, pick the device, and join torchrun's process group when there is one."""
    seed_everything(seed)
    dev = local_device(resolve_device(device))
    return dev, distributed.from_env(dev)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"unlearnable {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", metavar="", callback=_version, is_eager=True, help="Show the version and exit."),
    show_help: bool = HelpOpt,
) -> None:
    """Protect image folders from unauthorized training with imperceptible perturbations."""


@app.command()
def poison(
    input_dir: Path = typer.Argument(..., help="Folder of pictures to protect (searched recursively)."),
    gen: Optional[Path] = typer.Option(None, "--gen", help="Protection file (.safetensors) from `unlearnable train-generator`; default: the generator that ships with unlearnable (see README)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: <input>_protected beside the input)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Pictures per forward pass."),
    fmt: str = typer.Option("png", "--format", help="png (lossless, default), jpeg or webp (lossy: weakens protection)."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality 1-100 (lossy formats only)."),
    strict: bool = typer.Option(False, "--strict", metavar="", help="Stop at the first damaged picture instead of skipping it."),
    tile: int = typer.Option(512, "--tile", min=128, help="Pictures larger than this many pixels a side are protected in overlapping tiles."),
    shard: Optional[str] = typer.Option(None, "--shard", help="k/n: protect only part k (0..n-1) of n, e.g. one per machine; the last part to finish merges manifest.json. Under torchrun, the rank's part."),
    workers: int = typer.Option(0, "--workers", min=0, help="Threads decoding and encoding pictures beside the forward passes (0: one per CPU core, up to 8)."),
    work_size: str = typer.Option("auto", "--work-size", help="Shorter side, in pixels, the perturbation is computed at before it is upsampled to the picture (bilinear, budget kept): auto = the generator's training size, what a downscaling trainer learns from and fast on large photos; full = every pixel through the generator; or a number >= 8."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Protect every picture in a folder; writes a mirrored folder of PNGs and manifest.json."""
    with error_boundary(json_out, rerun_hint()):
        config = PoisonConfig(batch_size=batch_size, fmt=fmt, quality=quality, strict=strict, tile=tile,
                              shard=parse_shard(shard), workers=workers, work_size=work_size)
        if fmt != "png":
            console.print(f"[yellow]warning:[/] --format {fmt} re-encodes lossily, which weakens the protection "
                          "and can move pixels beyond the budget; png keeps it exact")
        if gen is None:
            gen = default_generator()
            if gen is None:
                raise UnlearnableError("this installation has no built-in generator; pass --gen FILE "
                                       "(make one with `unlearnable train-generator ./photos`)")
            console.print(f"using the built-in generator {gen.name} (no --gen given). It was trained on five CIFAR-10 "
                          "classes and protects pictures unlike them only weakly (README, 'The built-in generator'); "
                          "for real protection train one on your pictures: unlearnable train-generator ./photos")
        with progress_bar("protecting", quiet=False) as bar:
            task = bar.add_task("protecting", total=None, info="")
            result = protect_folder(
                input_dir, gen, out, config, resolve_device(device),
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                on_skip=lambda s: console.print(f"[yellow]skipped[/] {s.path}: {s.reason}", highlight=False),
            )
        console.print(poison_table(result))
        if result.shard != "0/1":
            n = result.shard.split("/")[1]
            console.print("all parts done: manifest.json merged" if result.merged
                          else f"part {result.shard} done; manifest.json is merged when all {n} parts have finished")
        remember({"protected": result.output_dir, "clean": input_dir})
        if json_out:
            emit_json(result.to_dict())


# train-generator's method-specific options (parameter names): whatever a registered method reads
_METHOD_OPTIONS = frozenset().union(COMMON_OPTIONS, *(m.options for m in METHODS.values()))


@app.command("train-generator")
def train_generator_cmd(
    data_dir: Path = typer.Argument(..., help="Folder of pictures, any layout (searched recursively); no labels needed."),
    eps: str = typer.Option("8/255", "--eps", help="L-inf budget on pixel values, e.g. 8/255 or 0.0314."),
    out: Path = typer.Option(Path("gen.safetensors"), "--out", help="Where to write the protection file (a generator for gue, a source model for rem, em, tap)."),
    preset: str = typer.Option("cpu", "--preset", help=f"Training recipe: {', '.join(PRESETS)} (cpu: minutes on a laptop; paper: the GUE paper's settings, for GPUs)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=0, help="Game epochs (BOME or TGDA); default from the preset (cpu: 8 warm-up + 4 game epochs, stretched on folders under 10,000 pictures to 948 steps in all)."),
    warmup_epochs: Optional[int] = typer.Option(None, "--warmup-epochs", min=0, help="Min-min warm-start epochs before the game; default from the preset."),
    inner_steps: Optional[int] = typer.Option(None, "--inner-steps", min=1, help="BOME inner steps T per outer step; default from the preset."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per outer step; default from the preset."),
    image_size: int = typer.Option(32, "--image-size", min=8, help="Training resolution in pixels (shorter side resized, centre-cropped)."),
    generator: Optional[str] = typer.Option(None, "--generator", help=f"U-Net size: {', '.join(GENERATOR_PRESETS)}; default from the preset."),
    victim: Optional[str] = typer.Option(None, "--victim", help=f"Follower architecture in the game: {', '.join(VICTIMS)}; default from the preset."),
    label_aware: Optional[bool] = typer.Option(None, "--label-aware/--image-only", metavar="", help="Generator sees the class, A(x, y) (cpu default), or only the picture, g(x) (paper)."),
    keys: Optional[str] = typer.Option(None, "--keys", help="Where the generator's key y comes from: clusters (K-means clusters of your pictures, no labels needed) or folders (class sub-folders, one per class)."),
    clusters: Optional[int] = typer.Option(None, "--clusters", min=2, max=1024, help="Number of K-means clusters (keys) with --keys clusters; default 10, fewer for folders under 200 pictures."),
    encoder: Optional[str] = typer.Option(None, "--encoder", help="Features the clusters are made in: builtin (the encoder inside the built-in generator, or mean colours if this installation has none), colour (mean colours on a grid), or a file from `unlearnable train-encoder`."),
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
    robust: Optional[str] = typer.Option(None, "--robust", help="The trainer's preprocessing to train against, inside the game (gue): none (default), all, or a comma-separated list of jpeg, grayscale, resize, blur, bits. Adversarial training is --adv-eps."),
    iterations: Optional[int] = typer.Option(None, "--iterations", min=1, help="REM/EM: source-model SGD iterations (cpu 200, paper 5000)."),
    allow_visible: bool = typer.Option(False, "--allow-visible", metavar="", help="Accept an --eps above 16/255 (the perturbation will show)."),
    seed: int = typer.Option(0, "--seed", help="Seed for python, numpy and torch."),
    resume: bool = typer.Option(False, "--resume", metavar="", help="Continue an interrupted run from <out>.ckpt (gue)."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Train a protection on a folder of pictures: a GUE generator (BOME or TGDA; GUE-AT with --adv-eps) or a REM/EM/TAP source model (these need class folders)."""
    budget = budget_option(eps, allow_visible=allow_visible)
    given = {name: value for name, value in locals().items() if name in _METHOD_OPTIONS and value is not None and value is not False}
    if adv_eps is not None:
        given["adv_eps"] = budget_option(adv_eps, allow_zero=True, name="--adv-eps")
    with error_boundary(json_out, rerun_hint("--resume")):
        chosen = get_method(method)
        settings = chosen.settings(preset, budget, image_size, seed, given)
        dev, ctx = _setup(seed, device)
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
        title = f"protection file ({chosen.written}) written to {report.output}" + (f" ({ctx.world} processes)" if ctx.active else "")
        columns = {"images": str(report.images), "skipped": str(report.skipped), **report.table,
                   "minutes": f"{report.seconds / 60:.1f}"}
        console.print(summary_table(title, columns))
        if json_out:
            emit_json({**report.to_dict(), "method": chosen.name, "device": str(dev)})


@app.command("train-encoder")
def train_encoder_cmd(
    data_dir: Path = typer.Argument(..., help="Labelled folder: one sub-folder of pictures per class (any classes; they need not be yours)."),
    out: Path = typer.Option(Path("encoder.safetensors"), "--out", help="Where to write the encoder file."),
    epochs: int = typer.Option(15, "--epochs", min=1, help="Training epochs."),
    image_size: int = typer.Option(32, "--image-size", min=8, help="Pixels the encoder sees (shorter side resized, centre-cropped)."),
    seed: int = typer.Option(0, "--seed", help="Seed for python, numpy and torch."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Train a feature encoder whose clusters key a label-free generator (train-generator --encoder)."""
    with error_boundary(json_out, "the run was stopped; run the same command again to start it over"):
        from ..training.encoder import EncoderTrainingConfig, train_encoder

        seed_everything(seed)
        dev = resolve_device(device)
        config = EncoderTrainingConfig(epochs=epochs, image_size=image_size, seed=seed)
        with progress_bar("training") as bar:
            load = bar.add_task("reading pictures", total=None, info="")
            task = bar.add_task("training the encoder", total=epochs, info="")
            result = train_encoder(
                data_dir, out, config, dev, on_load=lambda d, t: bar.update(load, completed=d, total=t),
                on_epoch=lambda r: bar.update(task, completed=r["epoch"], info=f"held-out acc {r['test_accuracy']:.3f}"),
            )
        console.print(summary_table(f"encoder written to {result.output}", {
            "images": str(result.images), "classes": str(result.classes),
            "held-out accuracy": f"{result.holdout_accuracy:.2%}", "minutes": f"{result.seconds / 60:.1f}"}))
        if json_out:
            emit_json(result.to_dict())


def _training_callbacks(bar):
    """A progress task per training run, advanced once per epoch."""
    tasks: dict[str, int] = {}
    current = {"name": ""}

    def on_stage(name: str, total: int) -> None:
        current["name"] = name
        tasks[name] = bar.add_task(f"training: {name}", total=total, info="")

    def on_epoch(r: dict) -> None:
        bar.update(tasks[current["name"]], completed=r["epoch"],
                   info=f"loss {r['train_loss']:.3f} test acc {r['test_accuracy']:.3f}")

    return on_stage, on_epoch


@app.command()
def evaluate(
    protected_dir: Optional[Path] = typer.Argument(None, help="Folder of protected pictures: one sub-folder per class, or any layout with --labels (default: the last `poison` output, from .unlearnable.json)."),
    test: Optional[Path] = typer.Option(None, "--test", help="Labelled folder of clean test pictures, same class folders (remembered in .unlearnable.json)."),
    clean: Optional[Path] = typer.Option(None, "--clean", help="The originals (matched by relative path): also train on them and report the gap."),
    adv_eps: str = typer.Option("0", "--adv-eps", help="Adversarial training L-inf radius, e.g. 4/255 (0: standard training)."),
    adv_loss: str = typer.Option("pgd", "--adv-loss", help="Adversarial training loss: pgd (Madry, 10 steps of eps/4) or trades (beta 1)."),
    protect_ratio: float = typer.Option(1.0, "--protect-ratio", min=0.0, max=1.0, help="Share (0-1) of training pictures that are protected; the rest are the --clean originals."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV of relative/path.jpg,class: the trainer's own labels, so the protected folder can have any layout (the --test folder needs one sub-folder per class named in it)."),
    clean_extra: Optional[Path] = typer.Option(None, "--clean-extra", help="Further clean labelled pictures added to every training set."),
    arch: Optional[str] = typer.Option(None, "--arch", help=f"Victim architecture: {', '.join(VICTIMS)}; default from the recipe."),
    recipe: str = typer.Option("quick", "--recipe", help=f"Training recipe: {', '.join(RECIPES)} (quick: small CNN, minutes on a CPU; paper: ResNet-18, 100 epochs, lr 0.1 under adversarial training)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Training epochs; default from the recipe."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per step; default from the recipe."),
    image_size: int = typer.Option(32, "--image-size", min=8, help="Training resolution in pixels (shorter side resized, centre-cropped)."),
    runs: int = typer.Option(1, "--runs", min=1, help="Repeat each training with seeds seed..seed+runs-1; report mean and std."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the JSON report here, and the learning curves as PNG next to it (default: <protected>.evaluation.json)."),
    seed: int = typer.Option(0, "--seed", help="Seed for python, numpy and torch."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Train fresh victims on protected pictures and report their clean-test accuracy."""
    adv = budget_option(adv_eps, allow_zero=True, name="--adv-eps")
    with error_boundary(json_out, "the run was stopped; run the same command again to start it over"):
        protected_dir, test, clean = training_folders(protected_dir, test, clean)
        rec = victim_recipe(recipe, arch, epochs, batch_size, adv.value, adv_loss)
        dev, ctx = _setup(seed, device)
        config = EvaluationConfig(recipe=rec, seed=seed, runs=runs, image_size=image_size,
                                  protect_ratio=protect_ratio, clean_extra=clean_extra, labels=labels)
        with progress_bar("evaluating", quiet=not ctx.is_main) as bar:
            on_stage, on_epoch = _training_callbacks(bar)
            result = evaluate_protection(protected_dir, test, clean, config, dev, on_stage, on_epoch, ctx)
        if not ctx.is_main:
            return
        remember({"test": test})
        title = f"{rec.arch}, {rec.epochs} epochs, {training_kind(rec, adv.text)}"
        console.print(evaluate_table(result, f"{title}, {result.test_images} test pictures", runs))
        if result.accuracy_drop is not None:
            console.print(f"protection costs an unauthorized trainer {result.accuracy_drop:.1%} accuracy")
        report = save_report(result, protected_dir, report, title)
        console.print(f"report: {report} and {report.with_suffix('.png')}")
        if json_out:
            emit_json(result.to_dict())


@app.command()
def defend(
    protected_dir: Optional[Path] = typer.Argument(None, help="Labelled folder of protected pictures (default: the last `poison` output)."),
    test: Optional[Path] = typer.Option(None, "--test", help="Labelled folder of clean test pictures (remembered in .unlearnable.json)."),
    defense: list[str] = typer.Option(["all"], "--defense", help=f"Countermeasure to run, repeatable: all, {', '.join(DEFENSES)}."),
    clean: Optional[Path] = typer.Option(None, "--clean", help="The originals: also apply each defense to them, to show the protection kept."),
    sweep: bool = typer.Option(False, "--sweep", metavar="", help="Run JPEG at qualities 10, 30, 50, 70 and 90 instead of 10 only."),
    adv_eps: str = typer.Option("8/255", "--adv-eps", help="L-inf radius of the adversarial-training defense, e.g. 8/255."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV of relative/path.jpg,class: the trainer's own labels for a protected folder of any layout."),
    export: Optional[Path] = typer.Option(None, "--export", help="Write the purified protected pictures here, one folder per defense."),
    arch: Optional[str] = typer.Option(None, "--arch", help=f"Victim architecture: {', '.join(VICTIMS)}; default from the recipe."),
    recipe: str = typer.Option("quick", "--recipe", help=f"Training recipe: {', '.join(RECIPES)}."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Training epochs per defense; default from the recipe."),
    image_size: int = typer.Option(32, "--image-size", min=8, help="Training resolution in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed for python, numpy and torch."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Run known countermeasures (JPEG, grayscale, filters, mixup, adversarial training...) and report what survives."""
    adv = budget_option(adv_eps, name="--adv-eps")
    with error_boundary(json_out, "the run was stopped; run the same command again to start it over"):
        from ..defend import DefendConfig, run_defenses

        defenses = build_defenses(defense, sweep=sweep, adv_eps=adv.value, adv_text=adv.text)
        protected_dir, test, clean = training_folders(protected_dir, test, clean)
        rec = victim_recipe(recipe, arch, epochs)
        dev, ctx = _setup(seed, device)
        config = DefendConfig(recipe=rec, seed=seed, image_size=image_size, export=export, labels=labels)
        with progress_bar("defending", quiet=not ctx.is_main) as bar:
            on_stage, on_epoch = _training_callbacks(bar)
            result = run_defenses(protected_dir, test, clean, defenses, config, dev, on_stage, on_epoch, ctx)
        if not ctx.is_main:
            return
        remember({"test": test})
        console.print(defend_table(result, f"what protection holds against ({rec.arch}, {rec.epochs} epochs, "
                                           f"{result.train_images} pictures)"))
        if json_out:
            emit_json(result.to_dict())


@app.command()
def demo(
    folder: Path = typer.Argument(Path("unlearnable-demo"), help="Folder to create the demo in."),
    eps: str = typer.Option("8/255", "--eps", help="L-inf budget on pixel values, e.g. 8/255 (at most 16/255)."),
    seed: int = typer.Option(0, "--seed", help="Seed for python, numpy and torch."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Run the whole workflow on synthetic pictures: train, protect unseen pictures, evaluate."""
    budget = budget_option(eps, allow_visible=False)
    with error_boundary(json_out, f"the demo was stopped and {folder} is incomplete; run the demo again in a new folder"):
        from ..demo import run_demo

        seed_everything(seed)
        dev = resolve_device(device)
        with progress_bar("demo") as bar:
            task = bar.add_task("demo", total=None, info="")

            def on_stage(text: str) -> None:
                bar.update(task, description=text, info="", completed=0, total=None)

            def on_step(s: dict) -> None:
                total = s["epochs"] * s["steps_per_epoch"]
                done = (s["epoch"] - 1) * s["steps_per_epoch"] + s["step"]
                bar.update(task, completed=done, total=total, info=f"{s['phase']} J_c {s['J_c']:.3f}")

            def on_epoch(r: dict) -> None:
                bar.update(task, info=f"epoch {r['epoch']} test acc {r['test_accuracy']:.3f}")

            result = run_demo(folder, budget, dev, seed, on_stage, on_step, on_epoch)
        console.print(demo_table(result))
        console.print(f"largest pixel change {result.max_change_levels}/255 (budget {result.budget_levels}/255); "
                      f"preview: {result.preview}")
        if json_out:
            emit_json(result.to_dict())


def run() -> None:
    app(prog_name="unlearnable")


if __name__ == "__main__":
    run()
