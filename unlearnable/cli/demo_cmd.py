"""`unlearnable demo`: the whole workflow on synthetic pictures, in a few minutes."""

from __future__ import annotations

from pathlib import Path

import typer

from ..device import resolve_device, seed_everything
from .common import budget_option, console, emit_json, error_boundary, progress_bar
from .options import DeviceOpt, HelpOpt, JsonOpt, SeedOpt
from .render import demo_table


def _demo_callbacks(bar):
    """(on_stage, on_step, on_epoch) driving one progress task through the demo's stages."""
    task = bar.add_task("demo", total=None, info="")

    def on_stage(text: str) -> None:
        bar.update(task, description=text, info="", completed=0, total=None)

    def on_step(s: dict) -> None:
        total = s["epochs"] * s["steps_per_epoch"]
        done = (s["epoch"] - 1) * s["steps_per_epoch"] + s["step"]
        bar.update(task, completed=done, total=total, info=f"{s['phase']} J_c {s['J_c']:.3f}")

    def on_epoch(r: dict) -> None:
        bar.update(task, info=f"epoch {r['epoch']} test acc {r['test_accuracy']:.3f}")

    return on_stage, on_step, on_epoch


def demo(
    folder: Path = typer.Argument(Path("unlearnable-demo"), help="Folder to create the demo in."),
    eps: str = typer.Option("8/255", "--eps", help="L-inf budget on pixel values, e.g. 8/255 (at most 16/255)."),
    seed: int = SeedOpt,
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
            result = run_demo(folder, budget, dev, seed, *_demo_callbacks(bar))
        console.print(demo_table(result))
        console.print(f"largest pixel change {result.max_change_levels}/255 (budget {result.budget_levels}/255); "
                      f"preview: {result.preview}")
        if json_out:
            emit_json(result.to_dict())
