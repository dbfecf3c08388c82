"""`unlearnable train-generator` and `train-encoder`: make the files `poison` applies."""

from __future__ import annotations

import functools
import inspect
from dataclasses import replace
from pathlib import Path
from typing import Optional, get_type_hints

import typer

from ..device import resolve_device, seed_everything
from ..budget import Budget
from ..methods import METHODS, get_method
from ..methods.base import COMMON, Option
from ..training.generator import PRESETS
from .common import budget_option, console, emit_json, error_boundary, progress_bar, rerun_hint
from .options import STOPPED, DeviceOpt, HelpOpt, ImageSizeOpt, JsonOpt, SeedOpt, setup
from .render import summary_table


def _declared_options() -> dict[str, Option]:
    """Every option some registered method declares (COMMON first), one per name; a name two
    methods declare keeps the first flag and joins the help texts."""
    merged: dict[str, Option] = {}
    for option in (*COMMON, *(o for m in METHODS.values() for o in m.declared)):
        first = merged.get(option.name)
        if first is None:
            merged[option.name] = option
        elif option.help not in first.help:
            merged[option.name] = replace(first, help=f"{first.help} {option.help}")
    return merged


def _parameter(option: Option) -> inspect.Parameter:
    """A Typer parameter for one declared option: unset (None) unless the user gives it."""
    if option.kind is bool and not option.switch:
        default, annotation, extra = False, bool, {"metavar": ""}
    else:
        kind = str if option.kind is Budget else option.kind
        default, annotation, extra = None, Optional[kind], {"metavar": ""} if option.switch else {}
    info = typer.Option(default, option.flags, help=option.help, min=option.min, max=option.max, **extra)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


def method_options(values: dict, declared: dict[str, Option]) -> dict:
    """The options the user set: None is unset, and so is an off flag (a two-way switch such as
    --label-aware/--image-only is a choice either way: False is kept). Budgets are parsed."""
    given = {}
    for name, value in values.items():
        option = declared[name]
        if value is None or (value is False and not option.switch):
            continue
        given[name] = budget_option(value, allow_zero=True, name=option.flags) if option.kind is Budget else value
    return given


def with_method_options(command):
    """``command`` with every method's declared options added to its signature, for Typer; it
    receives them as one dict, ``method_values``."""
    declared = _declared_options()
    hints = get_type_hints(command)
    fixed = [p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
             for p in inspect.signature(command).parameters.values() if p.name != "method_values"]
    at = next(i for i, p in enumerate(fixed) if p.name == "method") + 1
    params = [*fixed[:at], *(_parameter(o) for o in declared.values()), *fixed[at:]]

    @functools.wraps(command)
    def run(**values):
        return command(**{k: v for k, v in values.items() if k not in declared},
                       method_values=method_options({k: v for k, v in values.items() if k in declared}, declared))

    run.__signature__ = inspect.Signature(params)
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


@with_method_options
def train_generator(
    data_dir: Path = typer.Argument(..., help="Folder of pictures, any layout (searched recursively); no labels needed."),
    eps: str = typer.Option("8/255", "--eps", help="L-inf budget on pixel values, e.g. 8/255 or 0.0314."),
    out: Path = typer.Option(Path("gen.safetensors"), "--out", help="Where to write the protection file (a generator for gue, a source model for rem, em, tap)."),
    preset: str = typer.Option("cpu", "--preset", help=f"Training recipe: {', '.join(PRESETS)} (cpu: minutes on a laptop; paper: the GUE paper's settings, for GPUs)."),
    image_size: int = ImageSizeOpt,
    method: str = typer.Option("gue", "--method", help="Protection method: " + "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()) + "."),
    allow_visible: bool = typer.Option(False, "--allow-visible", metavar="", help="Accept an --eps above 16/255 (the perturbation will show)."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
    method_values: Optional[dict] = None,
) -> None:
    """Train a protection on a folder of pictures: a GUE generator (BOME or TGDA; GUE-AT with --adv-eps) or a REM/EM/TAP source model (these need class folders)."""
    budget = budget_option(eps, allow_visible=allow_visible)
    given = dict(method_values or {})
    resume = bool(given.get("resume"))
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
        if report.details.get("candidates"):
            if given.get("candidates") is None:
                console.print(f"{len(report.details['candidates'])} candidates: the default on a folder this size; "
                              "--candidates 1 trains one generator instead, in less time", highlight=False)
            clean = report.details["check_clean_accuracy"]
            console.print(f"the check: a small CNN trained on each candidate's protection, tested on held-out "
                          f"originals ({clean:.1%} from the originals themselves); the lowest is kept. "
                          f"{report.details['check_labels'][0].upper()}{report.details['check_labels'][1:]}",
                          highlight=False)
            console.print(summary_table(
                "the check, each candidate",
                {f"seed {c['seed']}": f"{c['check_accuracy']:.1%}" + (" (kept)" if c["seed"] == report.details["kept_seed"] else "")
                 for c in report.details["candidates"]}))
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
