"""How fast `poison` is, against the generator's bare forward pass on the same machine.

    python examples/poison_speed.py [--work /tmp/poison-speed] [--gen gen.safetensors] [--full] [--json out.json]

For each case (N pictures of W x H: 1,000 and 20,000 at 32x32, 20 at 6000x4000 by default)
it writes N synthetic JPEG pictures (gradients and shapes under mild sensor-like noise), then,
each in a fresh process so peak memory is that case's own:

* the ceiling: the generator's forward passes alone on tensors of that size (tiles for large
  pictures), pictures/s;
* `poison` on the folder with its default settings (`--work-size auto`: hashing, decoding,
  the perturbation at the generator's training size, upsampling, PNG encoding, re-decoding
  and checking every pixel, writing, manifest): pictures/s, seconds a picture, megapixels/s,
  the share of the ceiling it sustains, and the process's peak resident memory; with --full,
  also `--work-size full` for large pictures (every pixel through the generator, in tiles).

Without --gen a freshly initialised `small` U-Net is used: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

CASES = [(1000, 32, 32), (20000, 32, 32), (20, 6000, 4000)]

WORKER = r"""
import json, resource, sys, time
from pathlib import Path
import torch
from unlearnable.methods import load_protector
from unlearnable.poison import PoisonConfig, perturbation, protect_folder
mode, gen, folder, out, n, w, h, batch, work = sys.argv[1:10]
n, w, h, batch = int(n), int(w), int(h), int(batch)
config = PoisonConfig(batch_size=batch, work_size=work)
if mode == "ceiling":
    model, _ = load_protector(Path(gen))
    per = max(1, min(batch, n, config.pixel_budget // (w * h)))  # the batches poison would run
    x = torch.rand(per, 3, h, w)
    perturbation(model, x, None, config.tile, config.tile_overlap)  # warm-up at full size
    start, reps = time.perf_counter(), 0
    while reps < 2 or time.perf_counter() - start < 3:
        perturbation(model, x, None, config.tile, config.tile_overlap)
        reps += 1
    rate = reps * per / (time.perf_counter() - start)
else:
    res = protect_folder(Path(folder), Path(gen), Path(out), config)
    rate = res.images_per_s
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
print(json.dumps({"images_per_s": rate, "peak_mib": peak}))
"""


def make_pictures(folder: Path, n: int, w: int, h: int) -> None:
    """N smooth synthetic JPEGs of w x h (skipped if the folder already holds them)."""
    import torch
    from PIL import Image

    if folder.exists() and len(list(folder.glob("*.jpg"))) == n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    for i in range(n):
        a, b, c = torch.rand(3, generator=g).tolist()
        img = torch.stack([a * xx + (1 - a) * yy, (b * yy + c * xx) / 2 + 0.25, (xx * yy) * c + 0.2 * a])
        cy, cx, r = torch.rand(3, generator=g).tolist()
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (0.1 + 0.2 * r) ** 2
        img[:, disc] = img[:, disc] * 0.5 + 0.4
        img += 0.02 * torch.randn(img.shape, generator=g)  # a camera's noise: real photos are not smooth
        arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(folder / f"{i:05d}.jpg", quality=90)


def run_worker(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE, check=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fresh_generator(work: Path) -> Path:
    """A freshly initialised `small` U-Net written to ``work``: speed does not depend on the weights."""
    import torch

    from unlearnable.io.genfile import GeneratorInfo, save_generator
    from unlearnable.models.unet import GENERATOR_PRESETS, GeneratorConfig, UNetGenerator

    torch.manual_seed(0)
    config = GeneratorConfig(channels=GENERATOR_PRESETS["small"], eps=8 / 255)
    gen = work / "fresh-small.safetensors"
    save_generator(gen, UNetGenerator(config).eval(), GeneratorInfo(config=config, eps_text="8/255"))
    return gen


def measure_case(gen: Path, work: Path, n: int, w: int, h: int, batch: int, full: bool = False) -> list[dict]:
    """One NxWxH case: the bare forward ceiling (small pictures, or with ``full``) and `poison`, one row per policy."""
    case = f"{n}x{w}x{h}"
    folder, out = work / f"in-{case}", work / f"out-{case}"
    print(f"{case}: writing pictures", file=sys.stderr, flush=True)
    make_pictures(folder, n, w, h)
    shutil.rmtree(out, ignore_errors=True)
    common = [str(gen), str(folder), str(out), str(n), str(w), str(h), str(batch)]
    large = min(w, h) > 32
    print(f"{case}: bare forward passes at full resolution", file=sys.stderr, flush=True)
    ceiling = run_worker("ceiling", *common, "full") if (not large or full) else None
    rows = []
    for policy in (["auto", "full"] if large and full else ["auto"]):
        print(f"{case}: poison --work-size {policy}", file=sys.stderr, flush=True)
        poison = run_worker("poison", *common, policy)
        rows.append({
            "case": case, "work_size": policy, "pictures": n, "width": w, "height": h,
            "ceiling_images_per_s": ceiling["images_per_s"] if ceiling else None,
            "poison_images_per_s": poison["images_per_s"], "seconds_per_picture": 1 / poison["images_per_s"],
            "poison_megapixels_per_s": poison["images_per_s"] * w * h / 1e6,
            "share_of_ceiling": poison["images_per_s"] / ceiling["images_per_s"] if ceiling else None,
            "poison_peak_mib": poison["peak_mib"],
        })
        shutil.rmtree(out, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-poison-speed"), help="scratch folder")
    ap.add_argument("--gen", type=Path, default=None, help="generator file (default: a fresh small U-Net)")
    ap.add_argument("--cases", default=",".join(f"{n}x{w}x{h}" for n, w, h in CASES),
                    help="comma-separated NxWxH cases (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--full", action="store_true",
                    help="large pictures: also time --work-size full and its bare forward passes (about a minute a 24-MP photo)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    gen = args.gen or fresh_generator(args.work)
    rows = []
    for case in args.cases.split(","):
        n, w, h = (int(v) for v in case.split("x"))
        rows += measure_case(gen, args.work, n, w, h, args.batch_size, args.full)

    header = (f"{'case':>16} {'--work-size':>11} {'forward img/s':>13} {'poison img/s':>12} {'s/picture':>9} "
              f"{'MP/s':>7} {'of ceiling':>10} {'peak MiB':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ceiling = "-" if r["ceiling_images_per_s"] is None else f"{r['ceiling_images_per_s']:.2f}"
        share = "-" if r["share_of_ceiling"] is None else f"{r['share_of_ceiling']:.0%}"
        print(f"{r['case']:>16} {r['work_size']:>11} {ceiling:>13} {r['poison_images_per_s']:>12.2f} "
              f"{r['seconds_per_picture']:>9.2f} {r['poison_megapixels_per_s']:>7.2f} {share:>10} {r['poison_peak_mib']:>9.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
