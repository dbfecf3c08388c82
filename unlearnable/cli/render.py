"""Rich tables for each command's result (the CLI parses, calls the library, renders)."""

from __future__ import annotations

from rich.table import Table


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def summary_table(title: str, columns: dict[str, str]) -> Table:
    """A one-row summary: column name -> value."""
    return _table(title, tuple(columns), [tuple(columns.values())])


def poison_table(result) -> Table:
    title = f"protected {result.output_dir}" + (f" (part {result.shard})" if result.shard != "0/1" else "")
    work = "full" if not result.work_size else f"{result.work_size} px"
    return _table(title, ("files", "protected", "already done", "skipped", "images/s", "computed at", "largest change",
                          "mean PSNR"), [(
        str(result.files), str(result.protected), str(result.already_done), str(len(result.skipped)),
        f"{result.images_per_s:.1f}", work, f"{result.max_change_levels}/255 (budget {result.budget_levels})",
        "-" if result.mean_psnr is None else f"{result.mean_psnr:.2f} dB")])


def evaluate_table(result, title: str, runs: int) -> Table:
    rows = []
    for st in result.settings:
        pm = f" ± {st['accuracy_std']:.2%}" if runs > 1 else ""
        rows.append((st["name"], str(st["train_images"]), f"{st['accuracy']:.2%}{pm}", f"{st['peak_accuracy']:.2%}"))
    return _table(title, ("trained on", "pictures", "final test accuracy", "peak test accuracy"), rows)


def defend_table(result, title: str) -> Table:
    rows = [(row.defense, f"{row.protected_accuracy:.2%}", f"{row.protected_peak_accuracy:.2%}",
             "-" if row.clean_accuracy is None else f"{row.clean_accuracy:.2%}",
             "-" if row.protection_kept is None else f"{row.protection_kept:+.2%}") for row in result.rows]
    return _table(title, ("defense", "protected: final", "protected: peak", "clean: final", "protection kept"), rows)


def demo_table(result) -> Table:
    return _table("what an unauthorized trainer gets (small CNN, clean test pictures)", ("trained on", "test accuracy"),
                  [("original uploads", f"{result.clean_accuracy:.1%}"), ("protected uploads", f"{result.protected_accuracy:.1%}")])
