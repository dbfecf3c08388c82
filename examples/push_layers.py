"""`poison --push-steps` with the push also on inner layers of efficientnet-lite0: a screening.

    python examples/push_layers.py --gen WORK/gen_B.safetensors --photos FOLDER --out OUT --push-steps 10
    unlearnable evaluate OUT --test TEST --labels LABELS_PNG.csv --recipe pretrained

`poison --push-steps N` (unlearnable/game/push.py) moves each picture's pooled features at the
network's last layer towards the centre of the next key. A trainer who fine-tunes every layer
changes the last layers most and the first ones least, and inner-layer feature attacks are
known to carry over to other networks better than last-layer ones. This script adds, for each
stage in ``--stages`` (after ``blocks[i]``), the same loss on that stage's pooled features with
each key's centre at that stage, found on ``--photos`` itself with the keys the file gives its
pictures. ``--only-inner`` drops the last layer's loss; ``--flip`` adds the mirrored picture
(the fine-tuning trainer flips). ``--copy-epochs N`` adds the same losses on a copy of the
network fine-tuned for N epochs on ``--photos`` with the keys as labels (`evaluate --recipe
pretrained`'s recipe): the trainer's network drifts from the ImageNet one as it fine-tunes,
and a push that holds for both may hold along the way. ``--copy-on FOLDER`` fine-tunes that copy
on FOLDER's pictures instead, with the keys of ``--photos``'s pictures of the same names: on a
folder already protected, the copy is the network a trainer ends with on protected pictures,
and the push is made against the trainer's own updates (one round). ``--stages ""``: the last
layer only.
Then it runs `unlearnable poison` in this process with that
push (the command's own output, ``--batch-size 256``). A screening tool, not a product.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from unlearnable.data import load_pictures
from unlearnable.game.push import FeaturePush, push_centres
from unlearnable.io.genfile import load_generator
from unlearnable.models.pretrained import PretrainedEncoder
from unlearnable.models.victims import PretrainedVictim
from unlearnable.training.victim import train_victim, victim_recipe
from unlearnable.resize import resize


def stage_features(encoder: PretrainedEncoder, x: torch.Tensor, size: int, stages: tuple[int, ...]) -> list[torch.Tensor]:
    """(N, 3, H, W) in [0, 1] -> the pooled features after each of ``stages`` (hooks on
    ``blocks[i]``), then the last layer's (:meth:`PretrainedEncoder.pooled`), differentiable in x."""
    out: list[torch.Tensor] = []
    hooks = [encoder.net.blocks[i].register_forward_hook(lambda module, inputs, h: out.append(h.mean((2, 3)))) for i in stages]
    try:
        last = encoder.pooled(resize(x, (size, size)))
    finally:
        for h in hooks:
            h.remove()
    return out + [last]


def stem(path: str) -> str:
    """A picture's relative path without its suffix: the original and its protected PNG match."""
    return Path(path).with_suffix("").as_posix()


def finetuned_copy(x: torch.Tensor, y: torch.Tensor, keys: int, epochs: int, device: torch.device) -> PretrainedEncoder:
    """A copy of efficientnet-lite0 fine-tuned ``epochs`` epochs on uint8 pictures ``x`` with keys
    ``y`` as labels (the recipe of `evaluate --recipe pretrained`), frozen again as an encoder."""
    torch.manual_seed(0)  # the new head's weights: the same copy on every run
    victim = PretrainedVictim(keys)
    recipe = victim_recipe("pretrained", epochs=epochs)
    held = slice(0, min(500, len(y)))  # the per-epoch figure printed is accuracy on keys it trains on
    print(f"fine-tuning a copy of the network on {len(y)} pictures with their keys as labels, {epochs} epochs "
          "(a line after each)", flush=True)

    def on_epoch(h: dict) -> None:
        print(f"copy: epoch {h['epoch']}/{epochs}, loss {h['train_loss']:.3f}, "
              f"{h['test_accuracy']:.1%} of the first {held.stop} pictures in their key", flush=True)

    result = train_victim(x, y, x[held], y[held], recipe, keys, seed=0, device=device, on_epoch=on_epoch, model=victim)
    print(f"copy fine-tuned in {result.seconds:.0f} s", flush=True)
    return PretrainedEncoder("efficientnet-lite0-finetuned", victim.net)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", type=Path, required=True, help="a generator file with cluster keys and push centres")
    ap.add_argument("--photos", type=Path, required=True, help="the folder to protect (its keys' centres are found on it)")
    ap.add_argument("--out", type=Path, required=True, help="new folder for the protected pictures")
    ap.add_argument("--push-steps", type=int, default=10)
    ap.add_argument("--stages", default="2,4", help="inner stages of the network, comma-separated")
    ap.add_argument("--only-inner", action="store_true", help="no loss on the last layer")
    ap.add_argument("--flip", action="store_true", help="the loss on the picture and its mirror")
    ap.add_argument("--copy-epochs", type=int, default=0,
                    help="also push on a copy fine-tuned this many epochs on the folder with the keys as labels")
    ap.add_argument("--copy-on", type=Path, default=None,
                    help="fine-tune the copy on this folder's pictures (e.g. already protected), keys by name")
    a = ap.parse_args()
    if a.copy_on is not None and not a.copy_epochs:
        raise SystemExit("--copy-on FOLDER fine-tunes the copy: give --copy-epochs N too")
    stages = tuple(int(s) for s in a.stages.split(",") if s)
    gen, info = load_generator(a.gen)
    push = FeaturePush.from_keys(gen.keys)
    if push is None:
        raise SystemExit(f"{a.gen} carries no push centres: train it with this version of train-generator")
    data = load_pictures(a.photos, info.image_size, "none")
    x = data.x.float() / 255
    with torch.no_grad():
        y = torch.cat([gen.keys(b) for b in x.split(256)])
    encoders = [push.encoder]
    if a.copy_epochs:
        pictures = data.x
        if a.copy_on is not None:  # the same pictures by name (any suffix), in the order of --photos
            other = load_pictures(a.copy_on, info.image_size, "none")
            index = {stem(p): i for i, p in enumerate(other.paths)}
            missing = [p for p in data.paths if stem(p) not in index]
            if missing:
                raise SystemExit(f"{a.copy_on} lacks {len(missing)} of the pictures, e.g. {missing[0]}")
            pictures = other.x[[index[stem(p)] for p in data.paths]]
        encoders.append(finetuned_copy(pictures, y, len(push.centres), a.copy_epochs, push.centres.device))
    nets = []  # each network's (mean, centres) per stage, then the last layer's
    for encoder in encoders:
        with torch.no_grad():
            feats = [torch.cat(f) for f in zip(*(stage_features(encoder, b, push.size, stages) for b in x.split(128)))]
        layers = [push_centres(f, y, len(push.centres)) for f in feats]
        nets.append((encoder, layers[:-1] if a.only_inner else layers))
    print("pictures per key", torch.bincount(y, minlength=len(push.centres)).tolist(),
          "| last-layer centres against the file's: mean cosine",
          round(F.cosine_similarity(nets[0][1][-1][1], push.centres, dim=1).mean().item(), 3)
          if not a.only_inner else "-", flush=True)

    def step_loss(self, protected, target):
        loss = 0
        for encoder, layers in nets:
            for view in [protected, protected.flip(-1)] if a.flip else [protected]:
                outs = stage_features(encoder, view, self.size, stages)
                for f, (mean, centres) in zip(outs, layers):  # zip stops before the last layer with --only-inner
                    logits = self.scale * F.normalize(f - mean, dim=1) @ centres.T
                    loss = loss + F.cross_entropy(logits.float(), target, reduction="sum")
        return loss

    FeaturePush.step_loss = step_loss  # refine's steps on this loss, in this process only
    from unlearnable.cli.main import run
    import sys
    sys.argv = ["unlearnable", "poison", str(a.photos), "--gen", str(a.gen), "--out", str(a.out),
                "--batch-size", "256", "--push-steps", str(a.push_steps)]
    run()


if __name__ == "__main__":
    main()
