"""Does a game that plants one pattern per key find strong patterns for every seed?

The generators of `train-generator` are U-Nets that see each picture and its key. At full size
one seed's generator planted nearly one smooth pattern per key and protected 29 points, another
seed's, with the same keys, spread its change picture by picture and protected 8
(docs/label-free.md, "What the strong seed's generator plants"). Here the leader is only a bank
of patterns, one per key (``eps * tanh(P[key])``, enlarged to the pictures' size: the package's
KeyPatternGenerator, `train-generator --generator patterns`), trained by the same
min-min steps as the default's warm-up (unlearnable/game/minmin.py: the follower, the small CNN,
learns the keys from the protected pictures, seen through the trainer's crop and flip and
``--robust``; then the bank takes one Adam step on the same loss). The keys are the generator
file's own (``--gen``). For each ``--bank-seeds`` it prints the patterns' statistics as
examples/amplitude_screening.py does, then the small CNN trained with the true labels on the
protected pictures, trainer seeds ``--seeds``:

    python examples/pattern_bank.py --data /tmp/cifar10 --gen gen_B.safetensors --bank-seeds 0,1,2 --steps 600
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from unlearnable.budget import apply_budget, full_amplitude
from unlearnable.game.batch import GameBatch
from unlearnable.game.minmin import minmin_step
from unlearnable.io.genfile import load_generator
from unlearnable.models.unet import PATTERN_GAIN, GeneratorConfig, KeyPatternGenerator
from unlearnable.models.victims import build_victim
from unlearnable.training.generator import PRESETS, _game_transform
from unlearnable.training.victim import train_victim, victim_recipe

_spec = importlib.util.spec_from_file_location("amplitude_screening", Path(__file__).with_name("amplitude_screening.py"))
screening = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screening)


def train_bank(x: torch.Tensor, key: torch.Tensor, k: int, eps: float, seed: int, steps: int, lr: float,
               robust: tuple[str, ...], side: int, batch: int = 128) -> KeyPatternGenerator:
    torch.manual_seed(seed)
    bank = KeyPatternGenerator(GeneratorConfig(num_classes=k, eps=eps, patterns=side))
    victim = build_victim("small-cnn", k)
    bank_opt = torch.optim.Adam(bank.parameters(), lr=lr / PATTERN_GAIN)  # lr: the step on a pattern value
    victim_opt = torch.optim.SGD(victim.parameters(), lr=0.01, momentum=0.9)
    sampler = torch.Generator().manual_seed(seed)
    transform = _game_transform(replace(PRESETS["cpu"], robust=robust), sampler)  # crop, flip, then --robust
    done = 0
    while done < steps:
        perm = torch.randperm(len(x), generator=sampler)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            stats = minmin_step(GameBatch(bank, victim, x[idx].float() / 255, key[idx], bank_opt, victim_opt,
                                          transform, True))
            done += 1
            if done % 100 == 0:
                print(f"  step {done}: J_c {stats['J_c']:.3f}", flush=True)
            if done >= steps:
                break
    return bank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="extracted CIFAR-10 folder (train/ and test/)")
    ap.add_argument("--gen", type=Path, required=True, help="protection file whose keys are used")
    ap.add_argument("--lo", type=int, default=0)
    ap.add_argument("--hi", type=int, default=200)
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=10, help="trainer epochs")
    ap.add_argument("--seeds", default="0,1,2", help="trainer seeds")
    ap.add_argument("--bank-seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=948, help="min-min steps of the bank")
    ap.add_argument("--lr", type=float, default=0.05, help="the bank's Adam step on a pattern value "
                    "(the package's: gen_lr 1e-3 times PATTERN_GAIN)")
    ap.add_argument("--side", type=int, default=32, help="pixels a side of each pattern (enlarged to the pictures')")
    ap.add_argument("--robust", default="grayscale", help="the follower's preprocessing, comma-separated ('' none)")
    ap.add_argument("--keys", choices=("own", "true"), default="own", help="true: the true classes (a ceiling)")
    ap.add_argument("--amplitudes", default="bank,bank-full",
                    help="bank: the patterns as trained; bank-full: their signs at the whole budget")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    classes = list(range(10))
    x, y = screening.load(args.data, "train", args.lo, args.hi, classes)
    tx, ty = screening.load(args.data, "test", 0, args.test_per_class, classes)
    gen, info = load_generator(args.gen)
    gen.eval()
    k = info.config.num_classes
    key = screening.keys_of(gen, x, "own", k) if args.keys == "own" else y % k
    robust = tuple(filter(None, args.robust.split(",")))
    seeds = [int(s) for s in args.seeds.split(",")]
    for bank_seed in (int(s) for s in args.bank_seeds.split(",")):
        start = time.perf_counter()
        bank = train_bank(x, key, k, info.eps, bank_seed, args.steps, args.lr, robust, args.side)
        minutes = (time.perf_counter() - start) / 60
        with torch.no_grad():
            patterns = bank(x[:1].float(), torch.arange(k))
        print(f"bank seed {bank_seed}: {minutes:.1f} min; mean |delta| {float(patterns.abs().mean()) * 255:.2f} levels; "
              f"mean pairwise cosine {screening.pairwise_cosine(patterns):.3f}, "
              f"{screening.low_frequency_share(patterns):.1%} of the energy at the lowest frequencies", flush=True)
        levels = info.budget.levels
        for name in filter(None, args.amplitudes.split(",")):
            d = patterns if name == "bank" else full_amplitude(patterns.clone(), info.eps)
            train = torch.stack([apply_budget(p.permute(1, 2, 0), d[kk], levels).permute(2, 0, 1)
                                 for p, kk in zip(x, key)])
            accs = [100 * train_victim(train, y, tx, ty, victim_recipe("quick", epochs=args.epochs), 10, s,
                                       torch.device("cpu")).accuracy for s in seeds]
            print(f"bank seed {bank_seed}, {name:9} {statistics.mean(accs):6.2f}%  "
                  f"({', '.join(f'{a:.2f}' for a in accs)})", flush=True)


if __name__ == "__main__":
    main()
