"""Every speed figure of the issue "Fast where users wait", side by side, in one run.

    python examples/speed_benchmark.py [--data /tmp/cifar10] [--authors /path/to/gue-checkout] [--skip bome] [--json out.json]

Prints the machine, then one row per figure with its target:

* `poison`, one 6000x4000 photo, default settings: seconds a picture (``--photos`` synthetic JPEGs);
* `poison` on 1,000 32x32 pictures against the generator's bare forward passes;
* reading one of those photos for training at 32 pixels: full decode against draft mode;
* `evaluate`'s training path against a torchvision ImageFolder + DataLoader + PIL loop (the first
  ``--per-class`` CIFAR-10 training pictures of each class with ``--data``, else synthetic ones);
* one BOME outer step with the paper's settings (7.7M-parameter U-Net, ResNet-18, T = 10, batch
  ``--bome-batch``), split into the inner loop and the outer gradients, and, with ``--authors``
  (a checkout of github.com/hong-xian/gue), the authors' own step on the same batch. Their code is
  imported from that folder, never copied here; on a machine without CUDA its ``.cuda()`` calls are
  made no-ops for the run.

Ratios are measured within this one run (the steps take turns, so a machine that slows down slows
all of them alike); compare ratios, not seconds, between machines.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from evaluate_speed import measure as measure_evaluate
from poison_speed import fresh_generator, measure_case

from unlearnable.device import resolve_device
from unlearnable.game import bome as bome_module
from unlearnable.game.batch import GameBatch
from unlearnable.game.bome import BomeSettings, bome_step
from unlearnable.io.codec import decode_image
from unlearnable.models.unet import GENERATOR_PRESETS, GeneratorConfig, UNetGenerator
from unlearnable.models.victims import build_victim
from unlearnable.synthetic import make_synthetic_folder
from unlearnable.training.generator import PRESETS


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}")


def poison_figures(work: Path, photos: int) -> dict:
    gen = fresh_generator(work)
    small = measure_case(gen, work, 1000, 32, 32, 256)[0]
    large = measure_case(gen, work, photos, 6000, 4000, 256)[0]
    photo = sorted((work / f"in-{photos}x6000x4000").glob("*.jpg"))[0]
    full, draft = ([_median_seconds(lambda: decode_image(photo, at_least=n)) for n in (0, 64)])
    return {"photo_seconds": large["seconds_per_picture"], "small_share_of_forward": small["share_of_ceiling"],
            "small_images_per_s": small["poison_images_per_s"], "small_forward_images_per_s": small["ceiling_images_per_s"],
            "read_full_seconds": full, "read_small_seconds": draft}


def _median_seconds(fn, reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def evaluate_figures(data: Path | None, per_class: int, epochs: int, device) -> dict:
    if data is not None:
        return measure_evaluate(data / "train", data / "test", per_class, epochs, 2, device)
    root = Path(tempfile.mkdtemp(prefix="unlearnable-speed-eval-"))
    make_synthetic_folder(root / "train", num_classes=10, per_class=per_class, size=32, seed=0)
    make_synthetic_folder(root / "test", num_classes=10, per_class=20, size=32, seed=1)
    return measure_evaluate(root / "train", root / "test", per_class, epochs, 2, device)


def _authors_step(checkout: Path, batch: int, inner_steps: int):
    """A callable running one outer step of the authors' `bome` (gue.py) on one batch."""
    for name in ("tensorboardX", "tqdm"):  # imported at the top of gue.py, unused by `bome`
        if name not in sys.modules:
            with contextlib.suppress(ImportError):
                __import__(name)
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.SummaryWriter = stub.tqdm = object
            sys.modules[name] = stub
    if not torch.cuda.is_available():  # their code calls .cuda() throughout
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
    sys.path.insert(0, str(checkout))
    import gue  # noqa: E402 - their module, from the checkout

    args = argparse.Namespace(dataset="cifar10", num_classes=10, eps=8 / 255, lr_tmp=1e-4, eta=1.5)
    torch.manual_seed(0)
    attacker, classifier = gue.UNet(3), gue.create_net(args)
    cls_opt = torch.optim.SGD(classifier.parameters(), lr=0.01)
    atk_opt = torch.optim.SGD(attacker.parameters(), lr=0.1)
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints every inner iteration
            gue.bome(args, attacker, classifier, cls_opt, atk_opt, [(x, y)], inner_steps, 0)
    return step


def bome_figures(batch: int, steps: int, authors: Path | None) -> dict:
    paper = PRESETS["paper"]
    settings = BomeSettings(inner_steps=paper.bome.inner_steps, inner_lr=paper.bome.inner_lr, rho=paper.bome.rho)
    torch.manual_seed(0)
    gen = UNetGenerator(GeneratorConfig(channels=GENERATOR_PRESETS[paper.generator], eps=8 / 255))
    victim = build_victim(paper.victim, 10)
    gen_opt = torch.optim.SGD(gen.parameters(), lr=paper.gen_lr)
    victim_opt = torch.optim.SGD(victim.parameters(), lr=paper.victim_lr)
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    inner_seconds: list[float] = []
    plain_inner = bome_module.inner_response

    def timed_inner(*a, **k):
        start = time.perf_counter()
        out = plain_inner(*a, **k)
        inner_seconds.append(time.perf_counter() - start)
        return out

    theirs = _authors_step(authors, batch, settings.inner_steps) if authors else None
    ours_s, theirs_s = [], []
    bome_module.inner_response = timed_inner
    try:
        for round_ in range(steps + 1):  # round 0 warms up and is not counted
            print(f"BOME round {round_}/{steps}: ours", file=sys.stderr, flush=True)
            start = time.perf_counter()
            bome_step(GameBatch(gen, victim, x, y, gen_opt, victim_opt), settings)
            if round_:
                ours_s.append(time.perf_counter() - start)
            if theirs:
                print(f"BOME round {round_}/{steps}: the authors'", file=sys.stderr, flush=True)
                start = time.perf_counter()
                theirs()
                if round_:
                    theirs_s.append(time.perf_counter() - start)
    finally:
        bome_module.inner_response = plain_inner
    ours = statistics.median(ours_s)
    inner = statistics.median(inner_seconds[1:])
    return {"ours_seconds": ours, "inner_seconds": inner, "outer_seconds": ours - inner,
            "authors_seconds": statistics.median(theirs_s) if theirs_s else None,
            "ratio": ours / statistics.median(theirs_s) if theirs_s else None, "batch": batch,
            "inner_steps": settings.inner_steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="extracted CIFAR-10 (train/, test/) for the evaluate figure")
    ap.add_argument("--authors", type=Path, default=None, help="a checkout of hong-xian/gue: time their BOME step too")
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearnable-speed"), help="scratch folder")
    ap.add_argument("--photos", type=int, default=3, help="6000x4000 photos to protect")
    ap.add_argument("--per-class", type=int, default=300, help="evaluate: training pictures per class")
    ap.add_argument("--epochs", type=int, default=2, help="evaluate: epochs")
    ap.add_argument("--bome-batch", type=int, default=128)
    ap.add_argument("--bome-steps", type=int, default=1, help="timed BOME steps each, after one warm-up step")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out: poison, evaluate, bome")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    args.work.mkdir(parents=True, exist_ok=True)
    device = resolve_device("auto")
    figures: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if "poison" not in skip:
        figures["poison"] = poison_figures(args.work, args.photos)
    if "evaluate" not in skip:
        figures["evaluate"] = evaluate_figures(args.data, args.per_class, args.epochs, device)
    if "bome" not in skip:
        figures["bome"] = bome_figures(args.bome_batch, args.bome_steps, args.authors)

    print(f"\n{figures['machine']}, {figures['date']}")
    print(f"{'figure':58} {'measured':>22} {'target':>8}")
    rows = []
    if "poison" in figures:
        p = figures["poison"]
        rows += [("poison, one 6000x4000 photo, default settings", f"{p['photo_seconds']:.2f} s", "<= 8 s"),
                 ("poison 32x32 / bare generator forward", f"{p['small_share_of_forward']:.2f} "
                  f"({p['small_images_per_s']:.0f}/{p['small_forward_images_per_s']:.0f})", ">= 0.9"),
                 ("reading a 6000x4000 JPEG for training (32 px): full / draft",
                  f"{p['read_full_seconds']:.2f} / {p['read_small_seconds']:.2f} s", "")]
    if "evaluate" in figures:
        e = figures["evaluate"]
        rows.append(("evaluate training path / ImageFolder+DataLoader loop",
                     f"{e['speedup']:.2f}x ({e['ours_images_per_s']:.0f}/{e['plain_images_per_s']:.0f})", ">= 2x"))
    if "bome" in figures:
        b = figures["bome"]
        rows.append((f"BOME step, paper settings, batch {b['batch']}, T = {b['inner_steps']}: ours",
                     f"{b['ours_seconds']:.1f} s", ""))
        rows.append(("  of which the inner loop (T Adam steps on a copy)", f"{b['inner_seconds']:.1f} s", ""))
        if b["ratio"] is not None:
            rows.append(("  ours / the authors' step", f"{b['ratio']:.2f} ({b['authors_seconds']:.1f} s)", "<= 0.35"))
    for name, measured, target in rows:
        print(f"{name:58} {measured:>22} {target:>8}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
