"""Our training path against the usual torchvision loop, same victim, same epochs, same images.

    python examples/evaluate_speed.py --data /tmp/cifar10/train --test /tmp/cifar10/test [--per-class 200] [--epochs 2]

Ours: every folder decoded once into uint8 tensors kept on the device, whole-batch crop+flip on
the device, channels_last (and bf16 autocast on CUDA). Plain: torchvision ImageFolder +
DataLoader + per-image PIL RandomCrop/RandomHorizontalFlip/ToTensor. Prints images/s of each,
the ratio, and the test accuracy of each (they should agree within noise).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from unlearnable.data import load_labelled
from unlearnable.device import resolve_device
from unlearnable.models.victims import build_victim
from unlearnable.training.victim import RECIPES, _lr_at, accuracy, train_victim


def subset_folder(src: Path, per_class: int) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="unlearnable-speed-"))
    for cls in sorted(p.name for p in src.iterdir() if p.is_dir()):
        (dest / cls).mkdir()
        for f in sorted((src / cls).iterdir())[:per_class]:
            os.symlink(f.resolve(), dest / cls / f.name)
    return dest


def plain_loop(folder: Path, test_x, test_y, recipe, k: int, device, workers: int) -> tuple[float, float]:
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=recipe.batch_size, shuffle=True, num_workers=workers)
    torch.manual_seed(0)
    model = build_victim(recipe.arch, k).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=True)
    steps = math.ceil(len(ds) / recipe.batch_size)
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        for i, (x, y) in enumerate(loader):
            for g in opt.param_groups:
                g["lr"] = _lr_at(recipe, epoch + i / steps)
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    return len(ds) * recipe.epochs / seconds, accuracy(model, test_x, test_y, device)


def measure(data: Path, test_dir: Path, per_class: int, epochs: int, workers: int, device) -> dict:
    """Both loops on the first ``per_class`` pictures of each class of ``data``; images/s and accuracy of each."""
    folder = subset_folder(data, per_class)
    recipe = replace(RECIPES["quick"], epochs=epochs)
    test = load_labelled(test_dir, 32)
    start = time.perf_counter()
    train = load_labelled(folder, 32, class_names=test.class_names)
    decode_s = time.perf_counter() - start
    ours = train_victim(train.x, train.y, test.x, test.y, recipe, len(test.class_names), 0, device)
    train_seconds = len(train) * recipe.epochs / ours.images_per_s  # per-epoch test evaluation excluded
    ours_total = len(train) * recipe.epochs / (train_seconds + decode_s)
    plain_ips, plain_acc = plain_loop(folder, test.x, test.y, recipe, len(test.class_names), device, workers)
    return {"images": len(train), "epochs": recipe.epochs, "arch": recipe.arch, "device": str(device),
            "ours_images_per_s": ours.images_per_s, "ours_accuracy": ours.accuracy,
            "ours_with_decoding_images_per_s": ours_total, "plain_images_per_s": plain_ips, "plain_accuracy": plain_acc,
            "speedup": ours.images_per_s / plain_ips, "speedup_with_decoding": ours_total / plain_ips}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="labelled training folder")
    ap.add_argument("--test", type=Path, required=True, help="labelled test folder")
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for the plain loop")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    r = measure(args.data, args.test, args.per_class, args.epochs, args.workers, resolve_device(args.device))
    print(f"{r['images']} images x {r['epochs']} epochs, {r['arch']}, device {r['device']}")
    print(f"{'path':34} {'images/s':>10} {'test acc':>9}")
    print(f"{'ours (tensors on device)':34} {r['ours_images_per_s']:>10.0f} {r['ours_accuracy']:>9.2%}")
    print(f"{'ours incl. one-off decoding':34} {r['ours_with_decoding_images_per_s']:>10.0f} {'':>9}")
    print(f"{'ImageFolder+DataLoader+PIL':34} {r['plain_images_per_s']:>10.0f} {r['plain_accuracy']:>9.2%}")
    print(f"speed-up: {r['speedup']:.2f}x (training), {r['speedup_with_decoding']:.2f}x (including decoding)")


if __name__ == "__main__":
    main()
