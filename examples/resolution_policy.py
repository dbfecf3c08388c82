"""Does protection survive a trainer who downscales? Full resolution against --work-size.

    python examples/resolution_policy.py --gen gen.safetensors --photos owner/ --test test/ [--factor 4]

The owner's labelled pictures are enlarged --factor times (bicubic) to stand for the
high-resolution photos people publish. They are protected two ways, by the generator at full
resolution and with `poison --work-size` at the generator's training size (perturbation
computed small, upsampled bilinearly), and a trainer downscales every picture back to the
generator's size (`evaluate --image-size`, antialiased) and trains on it. Prints the trainer's
clean-test accuracy for the enlarged originals and both policies. Scratch files go to --work.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from benchlib import cli, remove


def enlarge(src: Path, dest: Path, factor: int) -> int:
    """Bicubic x``factor`` copies of every picture in a labelled folder (PNG); returns the count."""
    count = 0
    for path in sorted(src.rglob("*")):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        out = dest / path.relative_to(src).with_suffix(".png")
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as img:
                img.convert("RGB").resize((img.width * factor, img.height * factor), Image.BICUBIC).save(out)
        count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True, help="generator file (trained at --size)")
    ap.add_argument("--photos", type=Path, required=True, help="labelled folder of the owner's pictures")
    ap.add_argument("--test", type=Path, required=True, help="labelled clean test folder")
    ap.add_argument("--factor", type=int, default=4, help="enlargement standing for a high-resolution photo")
    ap.add_argument("--size", type=int, default=32, help="the generator's and the trainer's resolution")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-resolution"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    big = args.work / f"originals-x{args.factor}"
    n = enlarge(args.photos, big, args.factor)
    print(f"{n} pictures enlarged x{args.factor}", file=sys.stderr)
    ev = ["--test", str(args.test), "--image-size", str(args.size), "--epochs", str(args.epochs)]
    rows = {"enlarged originals": cli("evaluate", str(big), *ev, "--report", str(args.work / "orig.evaluation.json"))}
    for name, extra in (("full resolution", []), (f"--work-size {args.size}", ["--work-size", str(args.size)])):
        out = args.work / ("prot-" + name.replace(" ", "-").strip("-"))
        remove(out)
        cli("poison", str(big), "--gen", str(args.gen), "--out", str(out), *extra)
        rows[name] = cli("evaluate", str(out), *ev, "--report", str(out) + ".evaluation.json")

    print(f"\n{n} pictures enlarged x{args.factor}, protected, then downscaled to {args.size} px by the trainer "
          f"(small CNN, {args.epochs} epochs)")
    for name, r in rows.items():
        print(f"{name:>22}: {r['accuracy']:.2%} (peak {r['peak_accuracy']:.2%})")
    if args.json:
        args.json.write_text(json.dumps({k: {"accuracy": v["accuracy"], "peak": v["peak_accuracy"]} for k, v in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
