"""Options every command shares, declared once, and the set-up they all do."""

from __future__ import annotations

from typing import Optional

import torch
import typer

from .. import distributed
from ..device import DEVICE_CHOICES, resolve_device, seed_everything
from ..distributed import local_device
from ..models.victims import VICTIMS
from ..training.victim import RECIPES


def _help(ctx: typer.Context, value: bool) -> None:
    if value:
        typer.echo(ctx.get_help(), nl=False)
        raise typer.Exit()


# our own --help: a flag without a <bool> placeholder (Typer's is turned off in main.app)
HelpOpt = typer.Option(False, "--help", "-h", metavar="", is_eager=True, callback=_help, expose_value=False,
                       help="Show this message and exit.")
JsonOpt = typer.Option(False, "--json", metavar="", help="Print exactly one JSON object on stdout (human output stays on stderr).")
DeviceOpt = typer.Option("auto", "--device", help=f"Where to compute: {'|'.join(DEVICE_CHOICES)} (auto: cuda, mps, cpu).")
SeedOpt = typer.Option(0, "--seed", help="Seed for python, numpy and torch.")
ImageSizeOpt = typer.Option(32, "--image-size", min=8, help="Training resolution in pixels (shorter side resized, centre-cropped).")

# the trainer's side (evaluate, defend)
TestOpt = typer.Option(None, "--test", help="Labelled folder of clean test pictures, one sub-folder per class (remembered in .unlearnable.json); without one, the originals of a held-out fifth of the pictures (needs --clean).")
TRAINER_FOLDER_HELP = ("Folder of protected pictures, any layout (default: the last `poison` output, from "
                       ".unlearnable.json). The trainer's labels: --labels FILE; else with --test DIR the class "
                       "sub-folders of both; else with --clean ORIGINALS labels made from the originals (--auto-labels).")
LabelsOpt = typer.Option(None, "--labels", help="CSV of relative/path.jpg,class: the trainer's own labels, so the protected folder can have any layout (the --test folder needs one sub-folder per class named in it).")
AutoLabelsOpt = typer.Option("clusters", "--auto-labels", help="How the pictures are labelled when no --labels and no --test are given (--clean needed), whatever the layout: clusters (default) labels the originals by 10 K-means clusters of the shipped ImageNet network's features, a stand-in for a trainer's classes that ranks protections as a trainer's true labels do; imagenet by the network's top-1 ImageNet class, as a scraper would, which tells little where the network cannot name the pictures; folders takes the first-level sub-folders as the classes, for folders that are a trainer's classes (docs/trainer.md).")
ArchOpt = typer.Option(None, "--arch", help=f"Victim architecture: {', '.join(VICTIMS)}; default from the recipe.")
RecipeOpt = typer.Option("quick", "--recipe", help=f"Training recipe: {', '.join(RECIPES)} (quick: small CNN from scratch, minutes on a CPU; paper: ResNet-18, 100 epochs, lr 0.1 under adversarial training; pretrained: fine-tunes every layer of the shipped ImageNet network; linear-probe: trains only a new last layer on its frozen features).")
EpochsOpt: Optional[int] = typer.Option(None, "--epochs", min=1, help="Training epochs; default from the recipe.")

STOPPED = "the run was stopped; run the same command again to start it over"


def setup(seed: int, device: str) -> tuple[torch.device, distributed.Context]:
    """Seed, pick the device, and join torchrun's process group when there is one."""
    seed_everything(seed)
    dev = local_device(resolve_device(device))
    return dev, distributed.from_env(dev)


def auto_labels_option(value: str) -> str:
    """--auto-labels checked: a usage error (exit 2) names the choices."""
    from ..scraper_labels import AUTO_LABELS

    if value not in AUTO_LABELS:
        raise typer.BadParameter(f"--auto-labels {value!r}: use {', '.join(AUTO_LABELS[:-1])} or {AUTO_LABELS[-1]}")
    return value


def labelling_progress(bar):
    """A progress task for labelling the originals as a scraper would, made when it starts."""
    task: list[int] = []

    def on_labels(done: int, total: int) -> None:
        if not task:
            task.append(bar.add_task("labelling the originals (ImageNet network)", total=total, info=""))
        bar.update(task[0], completed=done, total=total)

    return on_labels


def training_callbacks(bar):
    """A progress task per training run, advanced once per epoch: (on_stage, on_epoch)."""
    tasks: dict[str, int] = {}
    current = {"name": ""}

    def on_stage(name: str, total: int) -> None:
        current["name"] = name
        tasks[name] = bar.add_task(f"training: {name}", total=total, info="")

    def on_epoch(r: dict) -> None:
        bar.update(tasks[current["name"]], completed=r["epoch"],
                   info=f"loss {r['train_loss']:.3f} test acc {r['test_accuracy']:.3f}")

    return on_stage, on_epoch
