"""`unlearnable poison`: protect a folder with a protection file, one forward pass a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..device import resolve_device
from ..errors import UnlearnableError
from ..io.discovery import check_folder
from ..methods import default_generator
from ..poison import PoisonConfig, parse_shard, protect_folder
from ..poison.fit_keys import describe as describe_fit
from ..poison.config import MAX_PUSH_STEPS
from ..project import remember
from .common import console, emit_json, error_boundary, progress_bar, rerun_hint
from .options import DeviceOpt, HelpOpt, JsonOpt
from .render import poison_table


def _built_in() -> Path:
    """The generator that ships with the package, announced."""
    gen = default_generator()
    if gen is None:
        raise UnlearnableError("this installation has no built-in generator; pass --gen FILE "
                               "(make one with `unlearnable train-generator ./photos`)")
    console.print(f"using the built-in generator {gen.name} (no --gen given): trained on small pictures of five "
                  "CIFAR-10 classes with keys from ImageNet features, it protects pictures it never saw, but less than "
                  "one trained on your own pictures (docs/label-free.md, 'The built-in generator'); for the strongest "
                  "protection: unlearnable train-generator ./photos")
    return gen


def _lossy_note(fmt: str, quality: int) -> str:
    """What a lossy --format costs (measured in docs/results.md, "Publishing JPEG or WebP")."""
    exact = "pixels can move beyond the budget by the format's own rounding (reported); png keeps it exact"
    if fmt == "jpeg" and quality >= 85:
        return f"note: JPEG at quality {quality} (4:4:4) kept almost all of the protection in our measurements; {exact}"
    return (f"[yellow]warning:[/] {fmt} at quality {quality} weakens the protection; JPEG at quality 85 or more "
            f"keeps the most (docs/results.md, 'Publishing JPEG or WebP'); {exact}")


def poison(
    input_dir: Path = typer.Argument(..., help="Folder of pictures to protect (searched recursively)."),
    gen: Optional[Path] = typer.Option(None, "--gen", help="Protection file (.safetensors) from `unlearnable train-generator`; default: the generator that ships with unlearnable (docs/label-free.md, 'The built-in generator')."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: <input>_protected beside the input)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Pictures per forward pass."),
    fmt: str = typer.Option("png", "--format", help="png (lossless, default), jpeg or webp (lossy: weakens protection)."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality 1-100 (lossy formats only)."),
    strict: bool = typer.Option(False, "--strict", metavar="", help="Stop at the first damaged picture instead of skipping it."),
    tile: int = typer.Option(512, "--tile", min=128, help="Pictures larger than this many pixels a side are protected in overlapping tiles."),
    shard: Optional[str] = typer.Option(None, "--shard", help="k/n: protect only part k (0..n-1) of n, e.g. one per machine; the last part to finish merges manifest.json. Under torchrun, the rank's part."),
    workers: int = typer.Option(0, "--workers", min=0, help="Threads decoding and encoding pictures beside the forward passes (0: one per CPU core, up to 8)."),
    work_size: str = typer.Option("auto", "--work-size", help="Shorter side, in pixels, the perturbation is computed at before it is upsampled to the picture (bilinear, budget kept): auto = the generator's training size, what a downscaling trainer learns from and fast on large photos; full = every pixel through the generator; or a number >= 8."),
    metadata: bool = typer.Option(True, "--metadata/--strip-metadata", help="Keep each picture's colour profile, EXIF (author, copyright, camera, GPS) and XMP in its protected copy (default), or write none. The EXIF thumbnail, an unprotected copy, is always dropped."),
    fit_keys: str = typer.Option("auto", "--fit-keys", help="auto (default): with the built-in generator and at least 20 pictures a key (200), first fit its cluster keys to this folder (K-means again in the same features; one extra pass over the pictures at the key model's small size) and protect with the fitted file, written into the output folder: pass it as --gen for later uploads so they get the same keys; a file of your own keeps its keys. yes: fit any file's cluster keys (refused below 200 pictures). no: the file's own keys."),
    amplitude: str = typer.Option("generator", "--amplitude", help="generator (default): the generator's own amplitudes. full: every computed value of the perturbation moves the whole budget (--eps of the file) in the direction the generator chose; a larger change that protected more on small folders and short trainings, not on a large one (docs/label-free.md, 'The whole budget')."),
    push_steps: int = typer.Option(0, "--push-steps", min=0, max=MAX_PUSH_STEPS, help="Against a trainer who starts from an ImageNet network (fine-tuning, or a new last layer on its features): after the generator, this many gradient steps per picture that move the picture's features in such a network (efficientnet-lite0) towards another key's (try 10). Each step costs that network's forward and backward pass on a small copy of the picture. It overwrites much of the generator's pattern, so a trainer who trains from scratch learns more from the pictures: an option for an owner who expects a trainer to keep such a network's features frozen (docs/trainer.md, 'Pushing each picture'). Needs a file from `train-generator` of this version, or the built-in generator on a folder of 200 pictures or more (it finds the centres there); 0 (default): none."),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    show_help: bool = HelpOpt,
) -> None:
    """Protect every picture in a folder; writes a mirrored folder of PNGs and manifest.json."""
    with error_boundary(json_out, rerun_hint()):
        config = PoisonConfig(batch_size=batch_size, fmt=fmt, quality=quality, strict=strict, tile=tile,
                              shard=parse_shard(shard), workers=workers, work_size=work_size,
                              metadata=metadata, fit_keys=fit_keys, amplitude=amplitude,
                              push_steps=push_steps)
        if fmt != "png":
            console.print(_lossy_note(fmt, quality))
        if gen is None:
            check_folder(input_dir)  # a mistyped folder gets its error, not the announcement first
            gen = _built_in()
        with progress_bar("protecting", quiet=False) as bar:
            tasks = {"protecting": bar.add_task("protecting", total=None, info="")}

            def follow(what: str):
                def update(done: int, total: int) -> None:
                    if what not in tasks:
                        tasks[what] = bar.add_task(what, total=total, info="")
                    bar.update(tasks[what], completed=done, total=total)
                return update

            result = protect_folder(
                input_dir, gen, out, config, resolve_device(device),
                on_progress=follow("protecting"),
                on_skip=lambda s: console.print(f"[yellow]skipped[/] {s.path}: {s.reason}", highlight=False),
                on_keys=follow("fitting keys to the folder"),
            )
        console.print(poison_table(result))
        if result.fitted_keys:
            console.print(describe_fit(result), highlight=False)
        elif result.keys_kept:
            console.print(f"[yellow]note:[/] {result.keys_kept}", highlight=False)
        if result.shard != "0/1":
            n = result.shard.split("/")[1]
            console.print("all parts done: manifest.json merged" if result.merged
                          else f"part {result.shard} done; manifest.json is merged when all {n} parts have finished")
        remember({"protected": result.output_dir, "clean": input_dir})
        if json_out:
            emit_json(result.to_dict())
