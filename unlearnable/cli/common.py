"""Shared CLI plumbing: consoles, error boundary, progress bars, option parsing."""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..budget import Budget, check_invisible, parse_budget
from ..errors import ConfigError, UnlearnableError

# Human output goes to stderr; stdout carries data only (--json).
# A log file has no width: Rich's 80-column default there cut the summary tables' headers.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
LOG_INTERVAL = 30.0  # seconds between progress lines when stderr is a log file


def rerun_hint(add: str = "") -> str:
    """'run `unlearnable <the same arguments> [add]` to resume', quoting as a shell needs."""
    args = [a for a in sys.argv[1:] if a != add]
    return f"run `{shlex.join(['unlearnable', *args, *([add] if add else [])])}` to resume where it stopped"


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
def error_boundary(json_out: bool = False, resume_hint: str = "run the same command again to resume where it stopped") -> Iterator[None]:
    """Turn library errors into one red line and exit code 1; Ctrl-C into a resume hint (130).

    With ``json_out`` the error is also printed on stdout as ``{"error": {"code", "message"}}``,
    so a script reading stdout learns what happened.
    """
    def fail(message: str, code: int, colour: str = "bold red", label: str = "error") -> typer.Exit:
        console.print(f"[{colour}]{label}:[/] {escape(message)}", highlight=False, soft_wrap=True)
        if json_out:
            emit_json({"error": {"code": code, "message": message}})
        return typer.Exit(code)

    try:
        yield
    except typer.BadParameter as exc:  # a bad combination of options, found by our checks: exit 2
        if json_out:
            emit_json({"error": {"code": exc.exit_code, "message": exc.format_message()}})
        raise
    except ConfigError as exc:  # the same: options that cannot go together, found by the library
        raise fail(str(exc), 2) from None
    except UnlearnableError as exc:
        raise fail(str(exc), 1) from None
    except KeyboardInterrupt:
        raise fail(resume_hint, 130, "yellow", "interrupted") from None
    except OSError as exc:  # disk full, permission denied, a folder that vanished...
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise fail(f"{exc.strerror or exc}{where}; nothing finished was lost: fix it and {resume_hint}", 1) from None


class LogProgress:
    """Progress for a log file, CI or nohup (stderr not a terminal): plain lines, not a live bar.

    A task prints a line when it first moves and when it completes; :meth:`tick`, called
    every ``LOG_INTERVAL`` seconds by a background thread, prints every task still running,
    so a long run is never silent for longer than that. Same calls as Rich's ``Progress``.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tasks: dict[int, dict] = {}
        self._lock = threading.Lock()

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        with self._lock:
            tid = len(self.tasks)
            self.tasks[tid] = {"description": description, "total": total, "completed": 0, "info": "",
                               "visible": True, "start": time.monotonic(), "shown": False, "done": False, **fields}
        return tid

    def update(self, task: int, **fields) -> None:
        with self._lock:
            t = self.tasks[task]
            new_total = "total" in fields and fields["total"] != t["total"] and t["total"] is not None
            if new_total or fields.get("completed", t["completed"]) < t["completed"]:
                # a new phase of the same task (finding keys, then the game; or a second pass over
                # the same pictures, counting again from the start): a rate and an end of its own
                for stale in ("first", "estimated"):
                    t.pop(stale, None)
                t["done"] = t["shown"] = False
            t.update(fields)
            finished = t["total"] is not None and t["completed"] >= t["total"] > 0
            if t["completed"] and "first" not in t:  # the rate is measured from the first step on
                t["first"] = (time.monotonic(), t["completed"])
            if (finished and not t["done"]) or (not t["shown"] and t["completed"]) or self._first_estimate(t):
                t["done"] = finished
                self._print(t)

    @staticmethod
    def _first_estimate(t: dict) -> bool:
        """True once, as soon as the time left can be estimated (5 s after the first step),
        so a long run says how long it will take without waiting for the next 30 s line."""
        if t.get("estimated") or "first" not in t or not t["total"] or t["completed"] <= t["first"][1]:
            return False
        t["estimated"] = time.monotonic() - t["first"][0] >= 5
        return t["estimated"]

    def tick(self) -> None:
        """One line for every visible task that has started and not finished."""
        with self._lock:
            for t in self.tasks.values():
                if t["shown"] and not t["done"]:
                    self._print(t)

    def _print(self, t: dict) -> None:
        t["shown"] = True
        if self.quiet or not t["visible"]:
            return
        total, done = t["total"], t["completed"]
        elapsed = time.monotonic() - t["start"]
        count = f"{done:g}/{total:g}" if total else f"{done:g}"
        # the rate since the first step, not since the task was added: reading pictures or the
        # first step's warm-up would otherwise make the first estimates far too long
        since, first_done = t.get("first", (0.0, 0))
        moved, spent = done - first_done, time.monotonic() - since
        known = total and 0 < done < total and moved > 0 and spent >= 5
        eta = f", about {_clock(spent * (total - done) / moved)} left" if known else ""
        console.print(f"{t['description']}: {count} {t['info']} [{_clock(elapsed)} elapsed{eta}]".replace("  ", " "),
                      highlight=False, markup=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


@contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator[Progress | LogProgress]:
    """A live progress bar on a terminal; elsewhere a line at least every 30 seconds."""
    if not console.is_terminal:
        progress = LogProgress(quiet)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(LOG_INTERVAL):
                progress.tick()

        thread = threading.Thread(target=heartbeat, name="unlearnable-progress", daemon=True)
        thread.start()
        try:
            yield progress
        finally:
            stop.set()
            thread.join()
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=quiet, transient=True,  # the summary table replaces the bars
    )
    with progress:
        yield progress
