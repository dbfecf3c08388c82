"""Does K-means luck explain why generator seeds protect differently?

    python examples/key_seeds.py --data sub2k/train GEN_SEED0 GEN_SEED1 GEN_SEED2 [--seeds 20] [--starts 1,5,10]

For generators trained with different ``--seed`` on the same folder (the same key encoder),
it prints the purity of each file's own keys on a labelled copy of that folder (the share of
pictures in their key's most common class) and the K-means cost of its centres; then, in
the same features, the cost and purity of K-means at ``--seeds`` seeds, and the purity of the
lowest-cost of N starts (``kmeans(..., starts=N)``, four draws each) for each N of
``--starts``. The labels are used only to score.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from key_purity import purity

from unlearnable.data import load_labelled
from unlearnable.io.genfile import load_keys
from unlearnable.models.keys import kmeans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the generators' folder with one sub-folder per class")
    ap.add_argument("generators", type=Path, nargs="+", help="generator files keyed by the same encoder")
    ap.add_argument("--seeds", type=int, default=20, help="K-means seeds to list")
    ap.add_argument("--starts", default="1,5,10", help="comma-separated numbers of K-means starts")
    a = ap.parse_args()
    torch.manual_seed(0)
    first = load_keys(a.generators[0])
    data = load_labelled(a.data, 32, key_size=first.config.image_size)  # as train-generator reads them
    x, y, k = data.x_keys.float() / 255, data.y, first.config.clusters
    with torch.no_grad():
        f = first.features(x)

    def cost(c: torch.Tensor) -> float:
        return float(torch.cdist(f, c).min(1).values.pow(2).sum())

    def score(c: torch.Tensor) -> float:
        return purity(torch.cdist(f, c).argmin(1), y)

    print(f"{len(y)} pictures, {len(data.class_names)} classes, K = {k}")
    for g in a.generators:
        c = load_keys(g).centres
        print(f"{g}: its own keys' purity {score(c):.3f}, cost {cost(c):.0f}")
    rows = sorted((cost(c), score(c), s) for s in range(a.seeds) for c in [kmeans(f, k, s)])
    for c, p, s in rows:
        print(f"K-means seed {s:3d}: cost {c:.0f}, purity {p:.3f}")
    for n in (int(v) for v in a.starts.split(",") if v):
        print(f"lowest cost of {n} starts, four draws:", [round(score(kmeans(f, k, d * n, starts=n)), 3) for d in range(4)])


if __name__ == "__main__":
    main()
