"""`unlearnable evaluate` and `defend`: play the would-be trainer on protected pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..defenses import DEFENSES, build_defenses
from ..evaluate import EvaluationConfig, evaluate_protection, save_report, training_kind
from ..project import remember, training_folders
from ..training.schedule import epochs_text
from ..training.victim import victim_recipe
from .common import budget_option, console, emit_json, error_boundary, progress_bar
from .options import (STOPPED, TRAINER_FOLDER_HELP, ArchOpt, AutoLabelsOpt, DeviceOpt, EpochsOpt, HelpOpt,
                      ImageSizeOpt, JsonOpt, LabelsOpt, RecipeOpt, SeedOpt, TestOpt, auto_labels_option,
                      labelling_progress, setup, training_callbacks)
from .render import defend_table, evaluate_table


def _tested_on(test: Path | None, n: int) -> str:
    """'N test pictures', or 'N held-out originals' when no test folder was given."""
    return f"{n} held-out originals" if test is None else f"{n} test pictures"


def _folders(protected_dir: Path | None, test: Path | None, clean: Path | None):
    """The folders to train and test on; says so when the test folder is a remembered one."""
    folders = training_folders(protected_dir, test, clean)
    if test is None and folders[1] is not None:
        console.print(f"testing on {folders[1]} (remembered from an earlier run; --test DIR for another, "
                      "--clean ORIGINALS for a held-out fifth of your own pictures)", highlight=False)
    return folders


def _labels_out(protected_dir: Path) -> Path:
    """Where labels made from the originals are written: ``<protected>.labels.csv`` beside the folder."""
    return protected_dir.parent / f"{protected_dir.resolve().name}.labels.csv"


def _few_test_pictures(n: int) -> None:
    if n < 200:
        console.print(f"[yellow]note:[/] {n} test pictures: one picture is {100 / n:.1f} points of accuracy, "
                      "so small differences here mean little")


def evaluate(
    protected_dir: Optional[Path] = typer.Argument(None, help=TRAINER_FOLDER_HELP),
    test: Optional[Path] = TestOpt,
    clean: Optional[Path] = typer.Option(None, "--clean", help="The originals (matched by relative path): also train on them and report the gap."),
    adv_eps: str = typer.Option("0", "--adv-eps", help="Adversarial training L-inf radius, e.g. 4/255 (0: standard training)."),
    adv_loss: str = typer.Option("pgd", "--adv-loss", help="Adversarial training loss: pgd (Madry, 10 steps of eps/4) or trades (beta 1)."),
    protect_ratio: float = typer.Option(1.0, "--protect-ratio", min=0.0, max=1.0, help="Share (0-1) of training pictures that are protected; the rest are the --clean originals."),
    labels: Optional[Path] = LabelsOpt,
    auto_labels: str = AutoLabelsOpt,
    clean_extra: Optional[Path] = typer.Option(None, "--clean-extra", help="Further clean labelled pictures added to every training set."),
    arch: Optional[str] = ArchOpt,
    recipe: str = RecipeOpt,
    epochs: Optional[int] = EpochsOpt,
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per step; default from the recipe."),
    image_size: int = ImageSizeOpt,
    runs: int = typer.Option(1, "--runs", min=1, help="Repeat each training with seeds seed..seed+runs-1; report mean and std."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the JSON report here, and the learning curves as PNG next to it (default: <protected>.evaluation.json)."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Train fresh victims on protected pictures and report their clean-test accuracy."""
    adv = budget_option(adv_eps, allow_zero=True, name="--adv-eps")
    with error_boundary(json_out, STOPPED):
        protected_dir, test, clean = _folders(protected_dir, test, clean)
        rec = victim_recipe(recipe, arch, epochs, batch_size, adv.value, adv_loss)
        dev, ctx = setup(seed, device)
        config = EvaluationConfig(recipe=rec, seed=seed, runs=runs, image_size=image_size,
                                  protect_ratio=protect_ratio, clean_extra=clean_extra, labels=labels,
                                  auto_labels=auto_labels_option(auto_labels), labels_out=_labels_out(protected_dir))
        with progress_bar("evaluating", quiet=not ctx.is_main) as bar:
            on_stage, on_epoch = training_callbacks(bar)
            result = evaluate_protection(protected_dir, test, clean, config, dev, on_stage, on_epoch, ctx,
                                         on_labels=labelling_progress(bar))
        if not ctx.is_main:
            return
        remember({"test": test})
        title = f"{rec.arch}, {epochs_text(rec.epochs)}, {training_kind(rec, adv.text)}"
        console.print(result.labels, highlight=False)
        console.print(evaluate_table(result, f"{title}, {_tested_on(test, result.test_images)}", runs))
        _few_test_pictures(result.test_images)
        if result.accuracy_drop is not None:
            drop = 100 * result.accuracy_drop
            console.print(f"protection costs an unauthorized trainer {drop:.1f} points of test accuracy" if drop > 0 else
                          f"protection did not lower the trainer's test accuracy ({0.0 - drop:+.1f} points)")
        report = save_report(result, protected_dir, report, title)
        console.print(f"report: {report} and {report.with_suffix('.png')}")
        if json_out:
            emit_json(result.to_dict())


def defend(
    protected_dir: Optional[Path] = typer.Argument(None, help=TRAINER_FOLDER_HELP),
    test: Optional[Path] = TestOpt,
    defense: list[str] = typer.Option(["all"], "--defense", help=f"Countermeasure to run, repeatable: all, {', '.join(DEFENSES)}."),
    clean: Optional[Path] = typer.Option(None, "--clean", help="The originals: also apply each defense to them, to show the protection kept."),
    sweep: bool = typer.Option(False, "--sweep", metavar="", help="Run JPEG at qualities 10, 30, 50, 70 and 90 instead of 10 only."),
    adv_eps: str = typer.Option("8/255", "--adv-eps", help="L-inf radius of the adversarial-training defense, e.g. 8/255."),
    labels: Optional[Path] = LabelsOpt,
    auto_labels: str = AutoLabelsOpt,
    export: Optional[Path] = typer.Option(None, "--export", help="Write the purified protected pictures here, one folder per defense."),
    arch: Optional[str] = ArchOpt,
    recipe: str = RecipeOpt,
    epochs: Optional[int] = EpochsOpt,
    image_size: int = ImageSizeOpt,
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Run known countermeasures (JPEG, grayscale, filters, mixup, adversarial training...) and report what survives."""
    adv = budget_option(adv_eps, name="--adv-eps")
    with error_boundary(json_out, STOPPED):
        from ..defend import DefendConfig, run_defenses, save_defense_plot

        defenses = build_defenses(defense, sweep=sweep, adv_eps=adv.value, adv_text=adv.text)
        protected_dir, test, clean = _folders(protected_dir, test, clean)
        rec = victim_recipe(recipe, arch, epochs)
        dev, ctx = setup(seed, device)
        config = DefendConfig(recipe=rec, seed=seed, image_size=image_size, export=export, labels=labels,
                              auto_labels=auto_labels_option(auto_labels), labels_out=_labels_out(protected_dir))
        with progress_bar("defending", quiet=not ctx.is_main) as bar:
            on_stage, on_epoch = training_callbacks(bar)
            result = run_defenses(protected_dir, test, clean, defenses, config, dev, on_stage, on_epoch, ctx,
                                  on_labels=labelling_progress(bar))
        if not ctx.is_main:
            return
        remember({"test": test})
        console.print(result.labels, highlight=False)
        console.print(defend_table(result, f"what protection holds against ({rec.arch}, {epochs_text(rec.epochs)}, "
                                           f"{result.train_images} pictures, {_tested_on(test, result.test_images)})"))
        _few_test_pictures(result.test_images)
        picture = save_defense_plot(result, protected_dir, f"what protection holds against: {rec.arch}, "
                                                           f"{epochs_text(rec.epochs)}, {result.train_images} pictures")
        console.print(f"picture: {picture}")
        if json_out:
            emit_json({**result.to_dict(), "picture": str(picture)})
