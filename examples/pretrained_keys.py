"""Which features of the ImageNet encoder make the purest keys, and at what cost?

    python examples/pretrained_keys.py --data sub2k [--sizes 64,96,128,160] [--clusters 10,20,50,100] [--json out.json]

``--data`` is a labelled folder (one sub-folder per class; the labels only score). For each
key resolution (pictures fitted to SIZE x SIZE before the network) this prints, with the
pictures per second of the forward pass on this machine:

* the *purity* of K-means keys (the share of pictures in their key's most common class),
  three K-means seeds, mean and spread (and with ``--starts`` N, each seed keeping the tightest
  of N starts), in three layers: the pooled 1,280 features before the
  classifier (``head``), the pooled 320 of the last block (``block``), the softmax over the
  1,000 ImageNet classes (``probs``);
* *ImageNet-class keys*: each picture's top-1 ImageNet class, the 1,000 classes grouped into
  K keys by K-means on the classifier's weight rows (no pictures needed: such keys exist for
  any picture, also one the owner never had);
* a linear probe's held-out accuracy on the head features (what a trainer's classes could get
  from them at best, 5-fold).

Over-clustering (K > classes) always raises purity; its figure is for the protection
screenings, not to compare with K = 10.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from unlearnable.data import load_labelled
from unlearnable.models.keys import kmeans
from unlearnable.resize import fit_center
from unlearnable.models.pretrained import load_encoder


def purity(key: torch.Tensor, y: torch.Tensor) -> float:
    return sum(int(torch.bincount(y[key == j]).max()) for j in key.unique()) / len(y)


def kmeans_purity(f: torch.Tensor, y: torch.Tensor, k: int, seeds: int = 3, starts: int = 1) -> list[float]:
    """Purity of K-means keys for ``seeds`` seeds; each keeps the tightest of ``starts`` starts."""
    return [purity(torch.cdist(f, kmeans(f, k, s * starts, starts=starts)).argmin(1), y) for s in range(seeds)]


def probe(f: torch.Tensor, y: torch.Tensor, folds: int = 5, epochs: int = 100) -> float:
    """Held-out accuracy of a logistic regression on standardised features (full-batch Adam)."""
    f = (f - f.mean(0)) / f.std(0).clamp_min(1e-6)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    right = 0
    for i in range(folds):
        test = order[i::folds]
        train = order[torch.isin(order, test, invert=True)]
        w = torch.zeros(f.shape[1], int(y.max()) + 1, requires_grad=True)
        b = torch.zeros(int(y.max()) + 1, requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=0.01, weight_decay=1e-4)
        for _ in range(epochs):
            loss = F.cross_entropy(f[train] @ w + b, y[train])
            opt.zero_grad()
            loss.backward()
            opt.step()
        right += int(((f[test] @ w + b).argmax(1) == y[test]).sum())
    return right / len(y)


def spread(values: list[float]) -> str:
    t = torch.tensor(values)
    return f"{t.mean():.1%} (range {t.min():.1%}-{t.max():.1%})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sizes", default="64,96,128,160")
    ap.add_argument("--clusters", default="10,20,50,100")
    ap.add_argument("--encoder", default="efficientnet-lite0")
    ap.add_argument("--starts", type=int, default=10, help="also: each seed keeps the tightest of this many K-means starts")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.manual_seed(0)
    enc = load_encoder(a.encoder)
    net = enc.net
    data = load_labelled(a.data, 32)
    x, y = data.x.float() / 255, data.y
    ks = [int(k) for k in a.clusters.split(",")]
    print(f"{len(y)} pictures, {len(data.class_names)} classes; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}", flush=True)
    groups = {k: torch.cdist(F.normalize(net.classifier.weight.detach(), dim=1),
                             kmeans(F.normalize(net.classifier.weight.detach(), dim=1), k, 0)).argmin(1) for k in ks}
    rows = []
    for size in [int(s) for s in a.sizes.split(",")]:
        head, block, logits = [], [], []
        start = time.perf_counter()
        with torch.no_grad():
            for b in x.split(100):
                z = net.forward_features(fit_center(b, size) * 2 - 1)  # after conv_head: (N, 1280, h, w)
                head.append(z.mean((2, 3)))
                logits.append(net.forward_head(z))
        per_s = len(y) / (time.perf_counter() - start)
        with torch.no_grad():  # the last block's 320 channels (before conv_head), a second pass
            for b in x[:len(y)].split(100):
                z = net.blocks(F.relu6(net.bn1(net.conv_stem(fit_center(b, size) * 2 - 1))))
                block.append(z.mean((2, 3)))
        head, block, logits = torch.cat(head), torch.cat(block), torch.cat(logits)
        row = {"size": size, "pictures_per_s": round(per_s, 1), "probe_head": probe(head, y)}
        for layer, f in (("head", head), ("block", block), ("probs", logits.softmax(1))):
            f = F.normalize(f - f.mean(0), dim=1)  # cosine K-means, as the key model runs it
            for k in ks:
                row[f"{layer}_k{k}"] = kmeans_purity(f, y, k)
                if layer != "probs" and a.starts > 1:
                    row[f"{layer}_best{a.starts}_k{k}"] = kmeans_purity(f, y, k, starts=a.starts)
        top1 = logits.argmax(1)
        for k in ks:
            row[f"imagenet_k{k}"] = [purity(groups[k][top1], y)]
        row["imagenet_top1_classes"] = int(top1.unique().numel())
        rows.append(row)
        print(f"\n{size} px: {per_s:.1f} pictures/s, linear probe {row['probe_head']:.1%}, "
              f"{row['imagenet_top1_classes']} distinct top-1 ImageNet classes", flush=True)
        layers = ["head", "block", "probs", "imagenet"]
        layers += [f"{n}_best{a.starts}" for n in ("head", "block")] if a.starts > 1 else []
        for layer in layers:
            print(f"  {layer:12}" + "  ".join(f"K={k}: {spread(row[f'{layer}_k{k}'])}" for k in ks), flush=True)
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "args": vars(a)}, indent=2, default=str))


if __name__ == "__main__":
    main()
