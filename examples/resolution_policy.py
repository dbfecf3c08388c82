"""Does protection survive a trainer who downscales? `poison --work-size` policies side by side.

    python examples/resolution_policy.py --gen gen.safetensors --photos owner/ --test test/ \
        [--labels labels.csv] [--factor 8] [--trainer-sizes 32,128] [--policies full,auto,128]

The owner's pictures are enlarged --factor times (bicubic) to stand for the high-resolution
photos people publish. They are protected once per policy (`poison --work-size auto`, the
default: perturbation computed at the generator's training size and upsampled bilinearly;
`full`: every pixel through the generator; or a number of pixels), and a trainer downscales
every picture to each of --trainer-sizes (`evaluate --image-size`, antialiased) and trains on
it. Prints the trainer's clean-test accuracy for the enlarged originals and every policy, one
column per trainer size, and the time each policy took. Scratch files go to --work.
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
    ap.add_argument("--gen", type=Path, required=True, help="generator file")
    ap.add_argument("--photos", type=Path, required=True, help="folder of the owner's pictures")
    ap.add_argument("--test", type=Path, required=True, help="labelled clean test folder")
    ap.add_argument("--labels", type=Path, default=None, help="labels CSV for a flat --photos folder")
    ap.add_argument("--factor", type=int, default=4, help="enlargement standing for a high-resolution photo")
    ap.add_argument("--trainer-sizes", default="32", help="comma-separated sizes the trainer downscales to")
    ap.add_argument("--policies", default="full,auto", help="comma-separated --work-size values")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-resolution"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    big = args.work / f"originals-x{args.factor}"
    n = enlarge(args.photos, big, args.factor)
    print(f"{n} pictures enlarged x{args.factor}", file=sys.stderr)
    sizes = [int(s) for s in args.trainer_sizes.split(",")]
    labels = ["--labels", str(args.labels)] if args.labels else []
    folders = {"enlarged originals": big}
    seconds = {}
    for policy in args.policies.split(","):
        out = args.work / f"prot-x{args.factor}-{policy}"
        remove(out)
        res = cli("poison", str(big), "--gen", str(args.gen), "--out", str(out), "--work-size", policy)
        folders[f"--work-size {policy}"], seconds[f"--work-size {policy}"] = out, res["seconds"]
    rows: dict[str, dict[int, dict]] = {}
    for name, folder in folders.items():
        for size in sizes:
            report = args.work / f"{folder.name}-{size}.evaluation.json"
            r = cli("evaluate", str(folder), "--test", str(args.test), *labels, "--image-size", str(size),
                    "--epochs", str(args.epochs), "--report", str(report))
            rows.setdefault(name, {})[size] = {"accuracy": r["accuracy"], "peak": r["peak_accuracy"]}

    print(f"\n{n} pictures enlarged x{args.factor}, protected, then downscaled by the trainer "
          f"(small CNN, {args.epochs} epochs); clean-test accuracy, lower is better protection")
    print(f"{'':>24} " + " ".join(f"{'trainer at ' + str(s):>16}" for s in sizes) + "   poison time")
    for name, by_size in rows.items():
        cells = " ".join(f"{by_size[s]['accuracy']:>16.2%}" for s in sizes)
        print(f"{name:>24} {cells}   " + (f"{seconds[name]:.1f} s" if name in seconds else ""))
    if args.json:
        args.json.write_text(json.dumps({"rows": {k: {str(s): v for s, v in r.items()} for k, r in rows.items()},
                                         "poison_seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
