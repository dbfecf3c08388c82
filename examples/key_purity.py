"""How well do a key model's clusters follow a trainer's classes? (issue "Data owners have no labels")

    python examples/key_purity.py --data sub10k [--keys FILE] [--clusters 10] [--pca 16,32,64] [--self-label 1]

Label-free protection plants one pattern per cluster, so it can only cost a trainer as much
as the clusters follow the trainer's classes. This prints the *purity* of K-means clusters
(the share of pictures that belong to their cluster's most common class) of a labelled
folder, in the features of ``--keys`` (an encoder file or a generator file with a key model;
default: the shipped small-CNN key model). The labels are used only to score.

* ``--pca``: the same K-means on the features projected on their first N principal axes.
* ``--neighbours N``: each K-means start also refined so that pictures share a key with their
  N nearest neighbours (``train-generator --key-neighbours N``).
* ``--self-label R``: R rounds of fine-tuning the encoder to predict its own clusters (the
  60% of each cluster nearest its centre, 3 epochs, crop+flip), then clustering again.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from unlearnable.augment import crop_flip
from unlearnable.data import load_labelled
from unlearnable.io.genfile import load_keys
from unlearnable.methods.base import small_cnn_encoder
from unlearnable.models.keys import ClusterKeys, kmeans, refine_by_neighbours


def purity(cluster: torch.Tensor, y: torch.Tensor) -> float:
    return sum(int(torch.bincount(y[cluster == j]).max()) for j in cluster.unique()) / len(y)


def assign(f: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Each feature's nearest centre, K-means as train-generator runs it (other seeds)."""
    return torch.cdist(f, kmeans(f, k, seed)).argmin(1)


def self_label(keys: ClusterKeys, x: torch.Tensor, k: int, keep: float = 0.6, epochs: int = 3) -> ClusterKeys:
    """Fine-tune a copy of the encoder on its own confident clusters; cluster again in its features."""
    with torch.no_grad():
        f = keys.features(x)
    dist = torch.cdist(f, keys.centres)
    cluster = dist.argmin(1)
    margin = dist.topk(2, largest=False).values.diff(dim=1)[:, 0]
    chosen = torch.cat([m[margin[m].argsort(descending=True)[: int(keep * len(m)) + 1]]
                        for m in (torch.nonzero(cluster == j)[:, 0] for j in range(k)) if len(m)])
    enc = copy.deepcopy(keys.encoder)
    enc.net[-1] = torch.nn.Linear(enc.net[-1].in_features, k)
    opt = torch.optim.SGD(enc.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    xs, ys = x[chosen], cluster[chosen]
    for _ in range(epochs):
        enc.train()
        order = torch.randperm(len(xs))
        for i in range(0, len(xs), 128):
            b = order[i:i + 128]
            loss = F.cross_entropy(enc(crop_flip(xs[b])), ys[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    config = replace(keys.config, clusters=k, source="kmeans", encoder_classes=k)
    return ClusterKeys.fit_kmeans(x, config, encoder=enc.eval())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a labelled folder (one sub-folder per class)")
    ap.add_argument("--keys", type=Path, default=None, help="encoder or generator file (default: the shipped small-CNN key model)")
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--pca", default="", help="comma-separated numbers of principal axes")
    ap.add_argument("--self-label", type=int, default=0, help="rounds of self-labelling")
    ap.add_argument("--seeds", type=int, default=1, help="K-means starts, each printed")
    ap.add_argument("--neighbours", default="", help="comma-separated neighbour counts for the refined clusters")
    a = ap.parse_args()
    torch.manual_seed(0)
    source = load_keys(a.keys or small_cnn_encoder())
    data = load_labelled(a.data, 32, key_size=source.config.image_size)  # as train-generator reads them
    x, y, k = data.x_keys.float() / 255, data.y, a.clusters
    config = replace(source.config, clusters=k, source="kmeans")
    keys = ClusterKeys.fit_kmeans(x, config, encoder=getattr(source, "encoder", None))
    print(f"{len(y)} pictures, {len(data.class_names)} classes, K = {k}")
    print(f"the key model's own clusters (what train-generator uses): purity {purity(keys(x), y):.3f}")
    with torch.no_grad():
        f = keys.features(x)
    print("the same features, K-means starts (seeds):", [round(purity(assign(f, k, s), y), 3) for s in range(a.seeds)])
    for n in [int(v) for v in a.neighbours.split(",") if v]:
        refined = [purity(torch.cdist(f, refine_by_neighbours(f, kmeans(f, k, s), n, s)).argmin(1), y) for s in range(a.seeds)]
        print(f"refined by {n} neighbours:", [round(v, 3) for v in refined])
    centred = f - f.mean(0)
    for n in [int(v) for v in a.pca.split(",") if v]:
        _, _, axes = torch.pca_lowrank(centred, q=n, center=False)
        z = F.normalize(centred @ axes, dim=1)
        print(f"first {n} principal axes:", [round(purity(assign(z, k, s), y), 3) for s in range(a.seeds)])
    for r in range(1, a.self_label + 1 if not source.config.pretrained else 1):  # the ImageNet encoder stays frozen
        keys = self_label(keys, x, k)
        print(f"self-labelling round {r}: purity {purity(keys(x), y):.3f}", flush=True)


if __name__ == "__main__":
    main()
