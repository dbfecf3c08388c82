"""The reports a person would rather look at than read: learning curves and the defense matrix.

Drawn with matplotlib (the field's plotting library) on its Agg backend, so no display is
needed; written atomically as PNG.
"""

from __future__ import annotations

import io
from pathlib import Path

from .files import atomic_write_bytes

PROTECTED, ORIGINAL = "#d62728", "#1f77b4"  # the same two colours in every picture
PROTECTED_LABEL, ORIGINAL_LABEL = "trained on protected pictures", "trained on the originals"


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display; a backend the caller chose stays
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.grid(axis="y", color="#dddddd")
    ax.set_axisbelow(True)
    ax.set_ylim(0, 100)
    ax.set_ylabel("clean-test accuracy (%)")
    return plt, fig, ax


def _save(plt, fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())


def plot_curves(path: Path, series: dict[str, list[float]], title: str = "") -> None:
    """Accuracy per epoch (values in [0, 1]), one line per training set; the final gap between
    the protected and the original pictures marked. A one-epoch run shows its points."""
    plt, fig, ax = _figure(7.5, 4.4)
    colours = iter(["#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"])
    finals = {}
    for name, values in series.items():
        colour = {PROTECTED_LABEL: PROTECTED, ORIGINAL_LABEL: ORIGINAL}.get(name) or next(colours, "#7f7f7f")
        epochs = range(1, len(values) + 1)
        ax.plot(epochs, [100 * v for v in values], marker="o", markersize=3 if len(values) > 1 else 7,
                color=colour, label=name, linewidth=2)
        if values:
            finals[name] = (len(values), 100 * values[-1])
    protected, original = finals.get(PROTECTED_LABEL), finals.get(ORIGINAL_LABEL)
    if protected and original:
        x = max(protected[0], original[0])
        ax.annotate("", xy=(x, protected[1]), xytext=(x, original[1]),
                    arrowprops={"arrowstyle": "<->", "color": "black"})
        ax.text(x, (protected[1] + original[1]) / 2, f"  protection {original[1] - protected[1]:.1f} points",
                va="center", ha="left", fontsize=9)
        ax.set_xlim(0.5, x + max(2.0, 0.3 * x))
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=9)
    _save(plt, fig, path)


def plot_defenses(path: Path, rows: list[dict], title: str = "") -> None:
    """Grouped bars: for each countermeasure, the trainer's accuracy on the protected pictures
    and (where measured) on the originals; the gap is the protection that survives."""
    plt, fig, ax = _figure(max(6.0, 0.9 * len(rows) + 2), 4.4)
    xs = range(len(rows))
    width = 0.4
    protected = [100 * r["protected_accuracy"] for r in rows]
    ax.bar([x - width / 2 for x in xs], protected, width, color=PROTECTED, label=PROTECTED_LABEL)
    if any(r.get("clean_accuracy") is not None for r in rows):
        clean = [100 * (r["clean_accuracy"] or 0) for r in rows]
        ax.bar([x + width / 2 for x in xs], clean, width, color=ORIGINAL, label=ORIGINAL_LABEL)
        for x, r in zip(xs, rows):
            if r.get("clean_accuracy") is not None:
                ax.text(x, max(protected[x], clean[x]) + 1.5,
                        f"kept {100 * (r['clean_accuracy'] - r['protected_accuracy']):.1f}", ha="center", fontsize=8)
    ax.set_xticks(list(xs), [r["defense"] for r in rows], rotation=30, ha="right", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=9)
    _save(plt, fig, path)
