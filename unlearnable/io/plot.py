"""A dependency-free learning-curve plot (PIL only): accuracy per epoch, one line per series."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from .images import atomic_write_bytes

COLOURS = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


def plot_curves(path: Path, series: dict[str, list[float]], title: str = "", width: int = 720, height: int = 420) -> None:
    """Write a PNG with each series (values in [0, 1], one per epoch) as a line."""
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 56, width - 190, 36, height - 44
    d.text((left, 10), title, fill="black")
    d.rectangle([left, top, right, bottom], outline="black")
    for k in range(0, 11, 2):
        yv = bottom - (bottom - top) * k / 10
        d.line([left, yv, right, yv], fill=(225, 225, 225))
        d.text((8, yv - 6), f"{k * 10:3d}%", fill="black")
    longest = max((len(v) for v in series.values()), default=1)
    for k in range(1, longest + 1):
        if longest <= 20 or k % max(1, longest // 10) == 0 or k == 1:
            xv = left + (right - left) * (k - 1) / max(1, longest - 1)
            d.text((xv - 4, bottom + 6), str(k), fill="black")
    d.text(((left + right) // 2 - 16, height - 20), "epoch", fill="black")
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(left + (right - left) * j / max(1, longest - 1), bottom - (bottom - top) * min(max(v, 0), 1))
               for j, v in enumerate(values)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for x, y in pts:
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        d.line([right + 12, top + 10 + 18 * i, right + 32, top + 10 + 18 * i], fill=colour, width=3)
        d.text((right + 38, top + 4 + 18 * i), name[:24], fill="black")
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(Path(path), buf.getvalue())
