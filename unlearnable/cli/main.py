"""`unlearnable`: protect image folders from unauthorized training.

One module per command (``poison_cmd``, ``train_cmd``, ``trainer_cmd``, ``demo_cmd``); each parses
its options, calls one library function and renders the result. Shared options are in ``options``.
"""

from __future__ import annotations

import typer

from .. import __version__
from .demo_cmd import demo
from .options import HelpOpt
from .poison_cmd import poison
from .train_cmd import train_encoder, train_generator
from .trainer_cmd import defend, evaluate

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Protect image folders from unauthorized training with imperceptible perturbations.",
    context_settings={"help_option_names": []},  # our own --help (HelpOpt): a flag without a <bool> placeholder
)


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


app.command()(poison)
app.command("train-generator")(train_generator)
app.command("train-encoder")(train_encoder)
app.command()(evaluate)
app.command()(defend)
app.command()(demo)


def run() -> None:
    app(prog_name="unlearnable")


if __name__ == "__main__":
    run()
