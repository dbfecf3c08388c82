"""How much of a keyed generator's protection is its keys' mean patterns, and what the whole
budget adds: one generator file, one screening folder, the small CNN with the true labels.

The pictures are CIFAR-10 training pictures ``--lo``..``--hi`` of each class in ``--classes``
(read from the extracted archive), the trainer's test set the first ``--test-per-class`` test
pictures of those classes. Each picture takes its key from the file's key model (``--keys
own``) or from K-means fitted to these pictures in the same features (``--keys fitted``, as
`poison --fit-keys` fits them, but numbered in K-means order: `poison` gives each new cluster
the file's key most of its pictures had). The perturbations compared, each rounded into 8-bit levels
within the budget as `poison` does, then the trainer for seeds 0-2:

* ``none``: the originals;
* ``generator``: the generator's output as it is (`poison --amplitude generator`);
* ``full``: every value at the whole budget, its sign the generator's (`poison --amplitude full`);
* ``keymean``: each key's mean pattern over the folder, scaled so its largest value is the budget;
* ``keymean-full``: the sign of each key's mean pattern, at the whole budget;
* ``classmean-full``: the same patterns, pattern i given to the pictures of true class i
  instead of key i: the patterns with perfectly pure keys (a ceiling, not a product);
* ``coded-full``: no key at all: each picture's pattern is the sign of a sum of the keys' mean
  patterns, weighted by the picture's first principal components in the key features (one
  component per pattern, each scaled to unit variance), so pictures with similar features get
  similar patterns; a trainer reading the pattern reads a linear code of the features rather
  than a cluster id;
* ``keyrand-full`` / ``coded32-full``: as ``keymean-full`` / ``coded-full``, with smooth random
  patterns (Gaussian on an 8 x 8 grid, enlarged) instead of the generator's, 32 of them and 32
  components for ``coded32-full``.

It also prints the share of the perturbations' energy that their keys' mean patterns hold, how
alike the keys' mean patterns are (their mean pairwise cosine) and the share of their energy in
the lowest spatial frequencies (within 3 cycles across the picture, both ways). ``--schemes ""``
prints only these.

    python examples/amplitude_screening.py --data /tmp/cifar10 --classes 5-9 --lo 1000 --hi 1400 --keys fitted
"""

from __future__ import annotations

import argparse
import functools
import statistics
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unlearnable.budget import apply_budget, full_amplitude
from unlearnable.io.genfile import load_generator
from unlearnable.methods import default_generator
from unlearnable.models.keys import kmeans
from unlearnable.training.victim import train_victim, victim_recipe

SCHEMES = ("none", "generator", "full", "keymean", "keymean-full", "classmean-full", "coded-full", "keyrand-full",
           "coded32-full")
CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()


def load(root: Path, split: str, lo: int, hi: int, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 pictures (N, 3, 32, 32) ``lo``..``hi - 1`` of each class, and labels 0..len(classes) - 1."""
    xs, ys = [], []
    for i, c in enumerate(classes):
        for j in range(lo, hi):
            xs.append(np.asarray(Image.open(root / split / CLASSES[c] / f"{j:04d}.jpg").convert("RGB")))
            ys.append(i)
    return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous(), torch.tensor(ys)


@torch.no_grad()
def keys_of(gen, x: torch.Tensor, how: str, k: int) -> torch.Tensor:
    """Each picture's key: the file's own, or K-means (seed 0) fitted to these pictures' features."""
    if how == "own":
        return torch.cat([gen.key(b.float() / 255) for b in x.split(256)])
    raw = torch.cat([gen.keys.raw_features(b.float() / 255) for b in x.split(256)])
    f = F.normalize(raw - raw.mean(0), dim=1)  # centred on this folder, unit length, as poison fits them
    return torch.cdist(f, kmeans(f, k, seed=0)).argmin(1)


def smooth_patterns(n: int, shape: torch.Size, seed: int = 0) -> torch.Tensor:
    """``n`` random patterns: Gaussian values on an 8 x 8 grid, enlarged bilinearly to ``shape``."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, shape[0], 8, 8, generator=g)
    return F.interpolate(coarse, size=tuple(shape[1:]), mode="bilinear", align_corners=False)


@torch.no_grad()
def feature_components(gen, x: torch.Tensor) -> torch.Tensor:
    """Each picture's coordinates on the principal axes of its key features (N, D), largest first."""
    f = torch.cat([gen.keys.features(b.float() / 255) for b in x.split(256)])
    f = f - f.mean(0)
    _, _, v = torch.linalg.svd(f, full_matrices=False)
    return f @ v.T


def coded(components: torch.Tensor, patterns: torch.Tensor, eps: float) -> torch.Tensor:
    """Each picture's pattern: the sign of the unit ``patterns`` summed with weights from its first
    ``len(patterns)`` components, each scaled to unit variance; at the whole budget ``eps``."""
    z = components[:, :len(patterns)]
    z = z / z.std(0, keepdim=True).clamp_min(1e-12)
    unit = patterns / patterns.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return full_amplitude(torch.einsum("nj,jchw->nchw", z, unit), eps)


def pairwise_cosine(patterns: torch.Tensor) -> float:
    """Mean cosine between every two of the patterns (K, C, H, W)."""
    u = F.normalize(patterns.flatten(1), dim=1)
    sim = u @ u.T
    return float(sim[~torch.eye(len(u), dtype=torch.bool)].mean())


def low_frequency_share(patterns: torch.Tensor, cycles: int = 3) -> float:
    """Share of the patterns' energy within ``cycles`` cycles across the picture, both ways."""
    power = torch.fft.fft2(patterns).abs().pow(2)
    f = torch.fft.fftfreq(patterns.shape[-1]).abs() * patterns.shape[-1]
    g = torch.fft.fftfreq(patterns.shape[-2]).abs() * patterns.shape[-2]
    low = (g[:, None] <= cycles) & (f[None, :] <= cycles)
    return float(power[..., low].sum() / power.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="extracted CIFAR-10 folder (train/ and test/)")
    ap.add_argument("--gen", type=Path, default=None, help="protection file (default: the built-in generator)")
    ap.add_argument("--classes", default="0-9", help="first-last class index")
    ap.add_argument("--lo", type=int, default=0, help="first training picture of each class")
    ap.add_argument("--hi", type=int, default=200, help="one past the last training picture of each class")
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument("--keys", choices=("own", "fitted"), default="own")
    ap.add_argument("--epochs", type=int, default=10, help="trainer epochs")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--schemes", default="none,generator,full,keymean,keymean-full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipe", default="quick", help="trainer recipe (quick: the small CNN; pretrained: fine-tuning); --epochs applies")
    args = ap.parse_args()
    unknown = set(args.schemes.split(",")) - set(SCHEMES) - {""}
    if unknown:
        raise SystemExit(f"unknown --schemes {', '.join(sorted(unknown))}; choose from {', '.join(SCHEMES)}")
    torch.set_num_threads(args.threads)
    first, last = map(int, args.classes.split("-"))
    classes = list(range(first, last + 1))
    x, y = load(args.data, "train", args.lo, args.hi, classes)
    tx, ty = load(args.data, "test", 0, args.test_per_class, classes)
    gen, info = load_generator(args.gen or default_generator())
    gen.eval()
    k = info.config.num_classes
    key = keys_of(gen, x, args.keys, k)
    with torch.no_grad():
        d = torch.cat([gen(xb.float() / 255, kb) for xb, kb in zip(x.split(256), key.split(256))])
    eps, levels = info.eps, info.budget.levels
    means = torch.stack([d[key == j].mean(0) if (key == j).any() else torch.zeros_like(d[0]) for j in range(k)])
    share = float(means[key].pow(2).sum() / d.pow(2).sum())
    print(f"pictures per key {torch.bincount(key, minlength=k).tolist()}; mean |delta| {float(d.abs().mean()) * 255:.2f} "
          f"levels of {levels}; the keys' mean patterns hold {share:.1%} of the energy", flush=True)
    print(f"the keys' mean patterns: mean pairwise cosine {pairwise_cosine(means):.3f}, "
          f"{low_frequency_share(means):.1%} of their energy at the lowest frequencies", flush=True)
    scaled = means / means.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12) * eps
    signs = full_amplitude(means.clone(), eps)  # each key's mean pattern at the whole budget
    components = functools.cache(lambda: feature_components(gen, x))  # only if a coded scheme asks
    deltas = {  # made only when their scheme is run
        "none": lambda: None,
        "generator": lambda: d,
        "full": lambda: full_amplitude(d.clone(), eps),
        "keymean": lambda: scaled[key],
        "keymean-full": lambda: signs[key],
        "classmean-full": lambda: signs[y % k],
        "coded-full": lambda: coded(components(), means, eps),
        "keyrand-full": lambda: full_amplitude(smooth_patterns(k, means.shape[1:]), eps)[key],
        "coded32-full": lambda: coded(components(), smooth_patterns(32, means.shape[1:], seed=1), eps),
    }
    assert set(deltas) == set(SCHEMES)
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in filter(None, args.schemes.split(",")):
        delta = deltas[name]()
        train = x if delta is None else torch.stack([
            apply_budget(p.permute(1, 2, 0), q, levels).permute(2, 0, 1) for p, q in zip(x, delta)])
        accs = [100 * train_victim(train, y, tx, ty, victim_recipe(args.recipe, epochs=args.epochs), len(classes), s,
                                   torch.device("cpu")).accuracy for s in seeds]
        print(f"{name:13} {statistics.mean(accs):6.2f}%  ({', '.join(f'{a:.2f}' for a in accs)})", flush=True)


if __name__ == "__main__":
    main()
