"""What `train-generator --robust` costs: seconds per game step, each option beside none, one run.

    python examples/robust_cost.py [--steps 6] [--batch-size 128] [--json out.json]

Builds the `cpu` preset's players (small U-Net, small CNN) on random 32x32 pictures and times
BOME outer steps (T = 2, crop+flip) with each `--robust` setting. The settings take turns,
step by step, so a machine that slows down during the run slows all of them alike; the
figure is the median step time and its ratio to `none`.
"""

from __future__ import annotations

import argparse

import torch

from benchlib import time_steps_in_turns, write_json
from unlearnable.game.bome import BomeSettings
from unlearnable.game.solvers import Bome
from unlearnable.models.unet import GENERATOR_PRESETS, GeneratorConfig, UNetGenerator
from unlearnable.models.victims import build_victim
from unlearnable.robust import ROBUST


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    settings = {"none": (), **{name: (name,) for name in ROBUST}, "all": ROBUST}
    players = {}
    for name in settings:
        gen = UNetGenerator(GeneratorConfig(channels=GENERATOR_PRESETS["small"], num_classes=10, eps=8 / 255))
        victim = build_victim("small-cnn", 10)
        players[name] = (gen, victim, torch.optim.Adam(gen.parameters(), 1e-3), torch.optim.SGD(victim.parameters(), 0.01))
    x = torch.rand(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    solver = Bome(BomeSettings(inner_steps=2))
    cases = {name: (solver, players[name], robust) for name, robust in settings.items()}
    rows = time_steps_in_turns(cases, x, y, args.steps, base="none")
    print(f"BOME outer step, cpu preset, batch {args.batch_size}, median of {args.steps} steps")
    print(f"{'--robust':>10} {'s/step':>8} {'x none':>7}")
    for name, r in rows.items():
        print(f"{name:>10} {r['seconds_per_step']:>8.2f} {r['ratio']:>7.2f}")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
