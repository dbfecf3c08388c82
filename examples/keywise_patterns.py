"""One pattern per key instead of one per picture: does a key-wise pattern protect more?

    python examples/keywise_patterns.py --gen WORK/gen_B.safetensors --photos FOLDER --out OUT --mode push
    unlearnable evaluate OUT --test TEST --labels LABELS_PNG.csv --recipe linear-probe

Every picture of key k gets the same pattern ``delta[k]`` (L-inf ``eps``), the keys of the
generator file ``--gen`` (its perturbation is not used). That is class-wise noise on the keys,
a shortcut any network learns, and with ``--mode push`` also the push of
unlearnable/game/push.py made universal (as Unlearnable Clusters, Zhang et al. CVPR 2023, do on
clusters): each key's pattern is optimised on batches of the folder so that the pictures move
in efficientnet-lite0's features towards the centre of key k + 1. ``--mode random``: a random
+-eps pattern per key. A screening tool, not a product: the patterns are computed at the
pictures' own size (32 px on the benchmark) and written as PNG under ``--out`` with the
names of ``--photos`` (a labels file of that folder fits once its suffixes say .png).
Prints how many pictures reach the target key.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from unlearnable.data import load_pictures
from unlearnable.game.push import FeaturePush
from unlearnable.io.genfile import load_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True, help="a generator file with cluster keys and push centres")
    ap.add_argument("--photos", type=Path, required=True, help="a flat folder of pictures, all of one size")
    ap.add_argument("--out", type=Path, required=True, help="new folder for the protected pictures")
    ap.add_argument("--mode", choices=("push", "random"), default="push")
    ap.add_argument("--steps", type=int, default=60, help="signed steps: eps/4 for the first half, eps/16 after")
    ap.add_argument("--batch", type=int, default=128, help="pictures a step")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    gen, info = load_generator(a.gen)
    eps = info.eps  # the file's budget
    data = load_pictures(a.photos, info.image_size, "none")  # pictures of that size stay as they are
    names = [Path(p).name for p in data.paths]
    x = data.x.float() / 255
    keys = gen.keys
    with torch.no_grad():
        y = torch.cat([keys(b) for b in x.split(256)])
    k = keys.config.clusters
    print("pictures per key", torch.bincount(y, minlength=k).tolist(), flush=True)
    start = time.time()
    if a.mode == "random":
        delta = (torch.randint(0, 2, (k, 3, *x.shape[-2:])).float() * 2 - 1) * eps
    else:
        push = FeaturePush.from_keys(keys)
        if push is None:
            raise SystemExit(f"{a.gen} carries no push centres: train it with this version of train-generator")
        delta = torch.zeros(k, 3, *x.shape[-2:])
        target = (y + 1) % k
        for s in range(a.steps):
            idx = torch.randperm(len(x))[:a.batch]
            d = delta.clone().requires_grad_(True)
            logits = push.scale * push.features((x[idx] + d[y[idx]]).clamp(0, 1)) @ push.centres.T
            (g,) = torch.autograd.grad(F.cross_entropy(logits, target[idx]), d)
            delta = (delta - (eps / 4 if s < a.steps // 2 else eps / 16) * g.sign()).clamp(-eps, eps)
            if s % 10 == 0:
                print(f"step {s}/{a.steps}, {time.time() - start:.0f} s", flush=True)
        with torch.no_grad():
            hit = torch.cat([(push.features((x[i:i + 256] + delta[y[i:i + 256]]).clamp(0, 1)) @ push.centres.T)
                             .argmax(1).eq(target[i:i + 256]) for i in range(0, len(x), 256)])
        print(f"{hit.float().mean().item():.1%} of the pictures reach the next key's centre", flush=True)
    a.out.mkdir(parents=True, exist_ok=False)
    for i, n in enumerate(names):
        p = ((x[i] + delta[y[i]]).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(p).save(a.out / (Path(n).stem + ".png"))
    print(f"{len(names)} pictures written, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
