"""How much protection survives the owner's publishing format? JPEG/WebP qualities side by side.

    python examples/publishing_formats.py --protected rgray --clean flat2k --test test2k \\
        --labels flat2k_labels.csv [--formats png,jpeg444:85,jpeg420:85,webp:85,jpeg444:75,jpeg420:75]

Each protected PNG of --protected (the output of `unlearnable poison`) is re-encoded in each
format with Pillow: `jpeg444:Q` is what `poison --format jpeg --quality Q` writes today (colour
at full resolution), `jpeg420:Q` the usual 4:2:0 (what it wrote before 2026-11-30), `webp:Q`
lossy WebP (always 4:2:0). A trainer then learns from the decoded files (`unlearnable
evaluate`, the given labels, --epochs) and is tested on --test. Prints, per format, the
trainer's accuracy, the largest change against the originals, the mean PSNR (both as `poison`
measures them) and the size of the picture files.
Scratch folders go to --work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from benchlib import cli, remove
from unlearnable.io.codec import decode_image
from unlearnable.poison.tiling import compare


def encode(src: Path, dest: Path, spec: str) -> None:
    """Every PNG under ``src`` re-encoded as ``spec`` under ``dest`` (same relative paths)."""
    kind, _, quality = spec.partition(":")
    for path in sorted(src.rglob("*.png")):
        rel = path.relative_to(src)
        with Image.open(path) as img:
            img = img.convert("RGB")
            if kind == "png":
                out, options = dest / rel, {}
            elif kind.startswith("jpeg"):
                out, options = dest / rel.with_suffix(".jpg"), {"quality": int(quality), "subsampling": 0 if kind == "jpeg444" else 2}
            elif kind == "webp":
                out, options = dest / rel.with_suffix(".webp"), {"quality": int(quality)}
            else:
                raise SystemExit(f"unknown format {spec!r}; use png, jpeg444:Q, jpeg420:Q or webp:Q")
            out.parent.mkdir(parents=True, exist_ok=True)
            img.save(out, **options)


def compare_folder(folder: Path, originals: Path) -> tuple[int, float]:
    """Largest change (levels) and mean PSNR (dB) against the originals, matched by path stem,
    measured as `poison` measures its outputs (manifest.json)."""
    by_stem = {p.relative_to(originals).with_suffix("").as_posix(): p for p in originals.rglob("*") if p.is_file()}
    worst, psnrs = 0, []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        orig = by_stem.get(path.relative_to(folder).with_suffix("").as_posix())
        if orig is None:
            continue
        change, psnr = compare(decode_image(path).rgb, decode_image(orig).rgb)
        worst = max(worst, change)
        if psnr is not None:
            psnrs.append(psnr)
    return worst, sum(psnrs) / len(psnrs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protected", type=Path, required=True, help="PNG output of `unlearnable poison`")
    ap.add_argument("--clean", type=Path, required=True, help="the originals it was made from")
    ap.add_argument("--test", type=Path, required=True, help="labelled clean test folder")
    ap.add_argument("--labels", type=Path, default=None, help="labels CSV for a flat folder")
    ap.add_argument("--formats", default="png,jpeg444:85,jpeg420:85,webp:85,jpeg444:75,jpeg420:75")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-publishing"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    labels = ["--labels", str(args.labels)] if args.labels else []
    rows = {}
    for spec in args.formats.split(","):
        folder = args.work / spec.replace(":", "-q")
        remove(folder)
        encode(args.protected, folder, spec)
        r = cli("evaluate", str(folder), "--test", str(args.test), "--clean", str(args.clean), *labels,
                "--epochs", str(args.epochs), "--report", str(args.work / f"{folder.name}.evaluation.json"))
        worst, psnr = compare_folder(folder, args.clean)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        rows[spec] = {"accuracy": r["accuracy"], "clean_accuracy": r["clean_accuracy"], "max_change_levels": worst,
                      "psnr": round(psnr, 2), "bytes": size}
    print(f"\n{'published as':>14} {'trainer':>9} {'originals':>10} {'largest change':>15} {'PSNR':>8} {'size':>10}")
    for spec, row in rows.items():
        print(f"{spec:>14} {row['accuracy']:>9.2%} {row['clean_accuracy']:>10.2%} {row['max_change_levels']:>15} "
              f"{row['psnr']:>6.1f} dB {row['bytes'] / 1e6:>7.2f} MB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
