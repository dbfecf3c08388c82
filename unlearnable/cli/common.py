"""Shared CLI plumbing: consoles, error boundary, progress bars, option parsing."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..budget import Budget, check_invisible, parse_budget
from ..errors import UnlearnableError

# Human output goes to stderr; stdout carries data only (--json).
console = Console(stderr=True)


def budget_option(value: str | None, allow_zero: bool = False, name: str = "--eps",
                  allow_visible: bool = True) -> Budget | None:
    """Parse a budget option; a bad one is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        budget = parse_budget(value, allow_zero=allow_zero, name=name)
        if not allow_visible:
            check_invisible(budget, name)
        return budget
    except UnlearnableError as exc:
        raise typer.BadParameter(str(exc)) from None


def emit_json(data: dict) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def error_boundary() -> Iterator[None]:
    """Turn library errors into one red line and exit code 1; Ctrl-C into a resume hint."""
    try:
        yield
    except UnlearnableError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted:[/] run the same command again to resume where it stopped")
        raise typer.Exit(130) from None


@contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,  # the summary table replaces the bars
    )
    with progress:
        yield progress
