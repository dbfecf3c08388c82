"""What one step of each game phase costs: a min-min warm-up step beside a BOME outer step, one run.

    python examples/step_cost.py [--steps 8] [--batch-size 128] [--json out.json]
    python examples/step_cost.py --memory-formats    # the min-min step with the players contiguous and channels-last
    python examples/step_cost.py --feature-push efficientnet-lite0   # the min-min step with and without the push
    python examples/step_cost.py --generator-passes   # the min-min step with the generator run twice (before 2026-12-07) and once

Builds the `cpu` preset's players (small U-Net, small CNN, 10 keys) on random 32x32 pictures,
with the preset's follower view (crop+flip, then `--robust grayscale`), and times the two
solvers' steps taking turns, so a machine that slows down during the run slows both alike.
Prints the median seconds per step and the ratio to the min-min step. With
``--memory-formats`` the two cases are instead the min-min step with both players' weights
in PyTorch's default (contiguous) layout and in the channels-last layout. With
``--feature-push NAME`` they are the min-min step without and with `train-generator
--feature-push NAME` (the preset's push batch and size), both players channels-last as in a run.
With ``--generator-passes`` they are the min-min step as it was written until 2026-12-07 (the
generator run twice a step: once without gradients for the victim's step, once for its own)
and as it is now (once), both players channels-last.
"""

from __future__ import annotations

import argparse

import torch

from benchlib import time_steps_in_turns, write_json
from unlearnable.game.follower import standard_loss
from unlearnable.game.push import FeaturePush
from unlearnable.game.solvers import Bome, MinMin
from unlearnable.models.unet import GENERATOR_PRESETS, GeneratorConfig, UNetGenerator
from unlearnable.models.victims import build_victim
from unlearnable.training.generator import PRESETS


class TwoPassMinMin:
    """The min-min step as it was until 2026-12-07: the generator's forward pass made twice."""

    name = "min-min, two generator passes"

    def step(self, batch) -> dict[str, float]:
        generator, victim, x, y, gen_opt, victim_opt = batch.players
        with torch.no_grad():
            delta = generator(x, y)
        victim_opt.zero_grad(set_to_none=True)
        loss_v = standard_loss(victim, batch.transform((x + delta).clamp(0, 1)), y)
        loss_v.backward()
        victim_opt.step()
        gen_opt.zero_grad(set_to_none=True)
        loss_g = standard_loss(victim, batch.transform((x + generator(x, y)).clamp(0, 1)), y)
        loss_g.backward()
        victim_opt.zero_grad(set_to_none=True)
        gen_opt.step()
        return {"J_c": loss_g.item(), "victim_loss": loss_v.item()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--json", default=None)
    ap.add_argument("--memory-formats", action="store_true", help="compare contiguous and channels-last players")
    ap.add_argument("--feature-push", default=None, help="compare the min-min step without and with this push network")
    ap.add_argument("--generator-passes", action="store_true",
                    help="compare the min-min step with the generator run twice (until 2026-12-07) and once")
    args = ap.parse_args()
    torch.manual_seed(0)
    preset = PRESETS["cpu"]
    if args.memory_formats:
        solvers = {"contiguous": MinMin(), "channels-last": MinMin()}
    elif args.feature_push:
        solvers = {"min-min": MinMin(), "min-min + push": MinMin()}
    elif args.generator_passes:
        solvers = {"two passes": TwoPassMinMin(), "one pass": MinMin()}
    else:
        solvers = {"min-min": MinMin(), "bome": Bome(preset.bome)}
    players = {}
    for name in solvers:
        gen = UNetGenerator(GeneratorConfig(channels=GENERATOR_PRESETS[preset.generator], num_classes=10, eps=8 / 255))
        victim = build_victim(preset.victim, 10)
        if name == "channels-last" or args.feature_push or args.generator_passes:
            gen, victim = (m.to(memory_format=torch.channels_last) for m in (gen, victim))
        players[name] = (gen, victim, torch.optim.Adam(gen.parameters(), preset.gen_lr),
                         torch.optim.SGD(victim.parameters(), preset.victim_lr, momentum=preset.victim_momentum))
    x = torch.rand(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    push = None
    if args.feature_push:
        push = FeaturePush.fit(args.feature_push, x, y, 10, size=preset.push_size, batch=preset.push_batch,
                               weight=preset.push_weight)
    cases = {name: (solver, players[name], preset.robust, push if name.endswith("push") else None)
             for name, solver in solvers.items()}
    rows = time_steps_in_turns(cases, x, y, args.steps, base=next(iter(solvers)))
    print(f"one game step, cpu preset (--robust {','.join(preset.robust) or 'none'}), batch {args.batch_size}, "
          f"median of {args.steps} steps, {torch.get_num_threads()} threads")
    print(f"{'case':>15} {'s/step':>8} {'ratio':>6}")
    for name, r in rows.items():
        print(f"{name:>15} {r['seconds_per_step']:>8.3f} {r['ratio']:>6.2f}")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
