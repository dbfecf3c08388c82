"""The trainer's preprocessing, differentiable, for inside the game (`train-generator --robust`).

The GUE follower's loss becomes an expectation over transformations t,
E_t CE(f(t(x + g(x))), y), as REM does for crop and flip: every picture of a batch goes
through one transformation drawn at random (or none), so the generator learns shortcuts that
survive what a trainer does to pictures before learning from them. The strength is drawn per
picture for JPEG and per step for the others. Each one stands for a real operation and is
tested against it (tests/test_robust.py):

* ``jpeg``: JPEG at a random quality in [10, 90], kornia's differentiable codec
  (Reich et al., WACV 2024) against Pillow's encoder;
* ``grayscale``: ITU-R 601 luma in three equal channels, exactly Pillow's "L" mode;
* ``downscale``: bilinear down to 1/2 or 1/4 (antialiased) and back up, as a trainer that
  learns at a lower resolution;
* ``gaussian``: Gaussian blur, sigma in [0.5, 1.5];
* ``bit-depth``: colour depth reduced to 2-5 bits (straight-through gradient).

The names are those of the same operations in `defend` (``unlearnable/defenses``); the names
before 2026-12-02 (resize, blur, bits) are still read.

Adversarial training is the follower's loss, not a transformation: ``--adv-eps`` (GUE-AT).
"""

from __future__ import annotations

from typing import Callable

import torch

from .errors import ConfigError
from .registry import Registry
from .resize import down_up

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, Pillow's RGB -> L


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Differentiable JPEG encode-decode of (N, 3, H, W) in [0, 1] at per-picture ``quality`` (N,)."""
    from kornia.enhance import jpeg_codec_differentiable

    return jpeg_codec_differentiable(x, quality.to(x.device, x.dtype)).clamp(0, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    luma = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * luma).sum(1, keepdim=True).expand_as(x)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from kornia.filters import gaussian_blur2d

    k = 2 * int(3 * sigma + 0.5) + 1
    return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="replicate")


def bits(x: torch.Tensor, depth: int) -> torch.Tensor:
    """Quantise to ``depth`` bits per channel; the gradient passes straight through."""
    levels = 2 ** depth - 1
    return x + ((x * levels).round() / levels - x).detach()


# name -> (x, u) -> x transformed at the strength drawn from u, uniform in [0, 1) per picture
ROBUST: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("--robust transformation", {
    "jpeg": lambda x, u: jpeg(x, 10 + 80 * u),
    "grayscale": lambda x, u: grayscale(x),
    "downscale": lambda x, u: down_up(x, 0.5 if u[0] < 0.5 else 0.25),
    "gaussian": lambda x, u: blur(x, 0.5 + float(u[0])),
    "bit-depth": lambda x, u: bits(x, 2 + int(u[0] * 4)),
})
FORMER_NAMES = {"resize": "downscale", "blur": "gaussian", "bits": "bit-depth"}  # before 2026-12-02


def parse_robust(text: str | None) -> tuple[str, ...]:
    """``none`` / ``all`` / comma-separated names -> the tuple of names, in canonical order."""
    if text is None or text.strip() in ("", "none"):
        return ()
    names = {FORMER_NAMES.get(n.strip(), n.strip()) for n in text.split(",") if n.strip()}
    if "all" in names:
        return ROBUST.names()
    unknown = sorted(names - set(ROBUST))
    if unknown:
        raise ConfigError(f"--robust: unknown transformation {unknown[0]!r}; use none, all or a comma-separated "
                          f"list of {', '.join(ROBUST)}")
    return tuple(n for n in ROBUST if n in names)


def _draw(name: str, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One transformation with its random strength, on a sub-batch."""
    return ROBUST[FORMER_NAMES.get(name, name)](x, torch.rand(len(x), generator=g))


def trainer_transforms(names: tuple[str, ...], generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> each picture through one of ``names`` or none, drawn uniformly per picture."""
    if not names:
        return lambda x: x

    def apply(x: torch.Tensor) -> torch.Tensor:
        choice = torch.randint(0, len(names) + 1, (len(x),), generator=generator)
        out = x
        for i, name in enumerate(names, start=1):
            idx = (choice == i).nonzero().flatten()
            if len(idx):
                idx = idx.to(x.device)
                out = out.index_copy(0, idx, _draw(name, x.index_select(0, idx), generator))
        return out

    return apply
