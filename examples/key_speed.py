"""How fast the ImageNet encoders find keys, by batch size, side by side in one run.

    python examples/key_speed.py [--pictures 512] [--batches 256,64,16,8] [--threads 2]

For each ImageNet encoder this installation has, at its own key size, the pictures per second
of the key features (fit to the key size, the pooled features) for each batch size, on random
32 x 32 pictures (the speed does not depend on what they show). The key model runs the
encoder ``KEY_BATCH`` pictures at a time (unlearnable/models/keys.py). CPUs differ: compare
the figures of one run with each other, not with another machine's.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from unlearnable.errors import EncoderUnavailableError
from unlearnable.models.keys import KEY_BATCH
from unlearnable.models.pretrained import PRETRAINED, load_encoder
from unlearnable.resize import fit_center


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pictures", type=int, default=512)
    ap.add_argument("--batches", default="256,64,16,8")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.rand(a.pictures, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batches = [int(b) for b in a.batches.split(",")]
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {a.threads} threads, "
          f"{time.strftime('%Y-%m-%d')}; {a.pictures} pictures; the key model's batch: {KEY_BATCH}")
    print(f"{'encoder':20} {'key px':>6} " + " ".join(f"{'batch ' + str(b):>10}" for b in batches) + "   (pictures/s)")
    for name, spec in PRETRAINED.items():
        try:
            enc = load_encoder(name)
        except EncoderUnavailableError as e:
            print(f"{name:20} not installed: {e}")
            continue
        enc.embed(fit_center(x[:8], spec.key_size))  # warm-up
        rates = []
        for b in batches:
            start = time.perf_counter()
            for part in x.split(b):
                enc.embed(fit_center(part, spec.key_size))
            rates.append(a.pictures / (time.perf_counter() - start))
        print(f"{name:20} {spec.key_size:>6} " + " ".join(f"{r:>10.1f}" for r in rates))


if __name__ == "__main__":
    main()
