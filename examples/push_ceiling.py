"""How far the feature push can go: the push's loss minimised for each picture on its own.

    python examples/push_ceiling.py --gen WORK/gen_B.safetensors --photos WORK/B_photos --out WORK/ceiling
    unlearnable evaluate WORK/ceiling --test WORK/test10 --labels WORK/B_labels.csv --recipe linear-probe

`train-generator --feature-push NAME` teaches the generator to move each picture's ImageNet
features towards the next key's centre (unlearnable/game/push.py), one forward pass per
picture. This script instead runs signed gradient steps (PGD, L-inf ``--eps``) on each
picture's perturbation against the same loss, with the keys of the generator file ``--gen``
(the keys only: its perturbation is not used), and writes the pictures as PNG under ``--out``
(the names of ``--photos``, so a labels file of that folder still fits). What a trainer
learns from those pictures bounds what the push can do at this budget; it is not a product
(PGD takes tens of gradient steps a picture). Prints how many pictures reach the target key.
``--labels CSV`` uses the trainer's own classes as the keys instead (each picture moved towards
the centre of the next class): the push with perfectly pure keys, to tell how much the keys'
purity limits it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image

from unlearnable.data import load_pictures, read_label_file
from unlearnable.game.push import FeaturePush
from unlearnable.io.genfile import load_generator
from unlearnable.models.pretrained import PRETRAINED


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True, help="a generator file with cluster keys")
    ap.add_argument("--photos", type=Path, required=True, help="the folder it protected (flat)")
    ap.add_argument("--out", type=Path, required=True, help="new folder for the pushed pictures")
    ap.add_argument("--network", default="efficientnet-lite0", choices=list(PRETRAINED))
    ap.add_argument("--size", type=int, default=96, help="pixels the network sees")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--eps", type=float, default=8 / 255)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--labels", type=Path, default=None, help="a labels CSV of --photos: its classes are the keys")
    a = ap.parse_args()
    gen, info = load_generator(a.gen)
    if gen.config.keys is None:
        raise SystemExit(f"{a.gen} has no key model: give a generator trained with keys (train-generator's default)")
    labels = read_label_file(a.labels) if a.labels else "none"
    data = load_pictures(a.photos, info.image_size, labels)  # the size the generator protected them at
    x_all = data.x.float() / 255
    if a.labels:
        y_all, k = data.y, len(data.class_names)
    else:
        with torch.no_grad():
            y_all = torch.cat([gen.key(b) for b in x_all.split(500)])
        k = gen.config.num_classes
    push = FeaturePush.fit(a.network, x_all, y_all, k, size=a.size, batch=a.batch, weight=1.0)
    a.out.mkdir(parents=True, exist_ok=False)
    start, hits = time.perf_counter(), 0
    for i in range(0, len(x_all), a.batch):
        x, y = x_all[i:i + a.batch], y_all[i:i + a.batch]
        delta = torch.zeros_like(x, requires_grad=True)
        for _ in range(a.steps):
            (g,) = torch.autograd.grad(push.loss(x, delta, y), delta)
            with torch.no_grad():
                delta -= a.eps / 4 * g.sign()
                delta.clamp_(-a.eps, a.eps)
        with torch.no_grad():
            pushed = (x + delta).clamp(0, 1)
            hits += (push.features(pushed) @ push.centres.T).argmax(1).eq((y + 1) % k).sum().item()
            pixels = (pushed * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for j, p in enumerate(pixels):
            Image.fromarray(p).save(a.out / Path(data.paths[i + j]).with_suffix(".png").name)
        print(f"{min(i + a.batch, len(x_all))}/{len(x_all)} pictures, {time.perf_counter() - start:.0f} s", flush=True)
    print(f"{hits / len(x_all):.1%} of the pictures reach the next key's centre ({a.steps} steps of {a.eps:.4f}, "
          f"{a.network} at {a.size} px), {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
