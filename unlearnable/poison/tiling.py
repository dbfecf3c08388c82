"""The perturbation of a batch: keys, tiles, the working size, and the 8-bit budget."""

from __future__ import annotations

import math

import torch
from ..budget import apply_budget, full_amplitude  # noqa: F401 - apply_budget: where poison's callers find it
from ..errors import ConfigError
from ..game.push import FeaturePush
from ..resize import resize, scaled

from .config import PoisonConfig


def batch_keys(generator: torch.nn.Module, x: torch.Tensor, known: list[int | None]) -> torch.Tensor | None:
    """y for a batch of whole pictures: the known classes, the rest from the file's key model.

    None for an image-only generator (and for a label-aware one without keys given nothing,
    which :func:`protect_folder` has refused before).
    """
    if known and all(k is not None for k in known):
        return torch.tensor(known, device=x.device)
    key = getattr(generator, "key", None)
    found = key(x) if key is not None else None
    if found is not None:
        for i, k in enumerate(known):
            if k is not None:
                found[i] = k
    return found


def _feather(n: int, overlap: int, device) -> torch.Tensor:
    ramp = torch.ones(n, device=device)
    k = min(overlap, n // 2)
    if k > 0:
        edge = torch.arange(1, k + 1, device=device, dtype=torch.float32) / (k + 1)
        ramp[:k] = edge
        ramp[-k:] = edge.flip(0)
    return ramp


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


@torch.no_grad()
def perturbation(generator: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, tile: int, overlap: int) -> torch.Tensor:
    """Perturbation for a batch x (N, 3, H, W); large pictures go through overlapping tiles.

    Tiles are blended with linear feathering weights, a convex combination, so the blend
    never leaves [-eps, eps] and shows no seams.
    """
    n, _, h, w = x.shape
    if h <= tile and w <= tile:
        return generator(x, y)
    stride = max(tile - overlap, 1)
    out = torch.zeros_like(x)
    weight = torch.zeros(1, 1, h, w, device=x.device)
    for top in _starts(h, tile, stride):
        for left in _starts(w, tile, stride):
            th, tw = min(tile, h), min(tile, w)
            patch = generator(x[:, :, top:top + th, left:left + tw], y)
            wgt = _feather(th, overlap, x.device)[:, None] * _feather(tw, overlap, x.device)[None, :]
            out[:, :, top:top + th, left:left + tw] += patch * wgt
            weight[:, :, top:top + th, left:left + tw] += wgt
    return out / weight


def resolve_work_size(work_size: int | str, trained_size: int) -> int:
    """The shorter side to compute perturbations at (0: full): ``auto`` is the generator's training size.

    ``work_size`` was checked by :class:`PoisonConfig`.
    """
    if work_size == "auto":
        return trained_size
    return 0 if work_size == "full" else int(work_size)


def perturb_at(generator: torch.nn.Module, x: torch.Tensor, known: list[int | None], config: PoisonConfig,
               work_size: int, eps: float) -> torch.Tensor:
    """The perturbation at full size, or computed with the shorter side at ``work_size`` and upsampled.

    ``known``: each picture's class where the file needs or can use one (see :func:`batch_keys`);
    the file's key model finds the others, from the small copy when the key model works at that
    size or smaller (at the default work size that copy is exactly the resize the key model
    would make itself), else from the picture itself (an ImageNet encoder sees 128 pixels).
    Bilinear upsampling makes every pixel a convex combination of computed ones, so the
    L-inf bound still holds; the pattern then has the scale the generator was trained at,
    which is what survives a trainer's downscaling (docs/scaling.md, "Resolution policy").
    ``config.amplitude`` "full" (not the default) takes every computed value to the whole budget
    ``eps`` first (:func:`full_amplitude`), at the size it was computed at; ``config.push_steps``
    then moves each picture's ImageNet features towards the next key's (:func:`_pushed`), there too.
    """
    h, w = x.shape[2:]
    if not work_size or min(h, w) <= work_size:
        y = batch_keys(generator, x, known)
        return _pushed(generator, x, perturbation(generator, x, y, config.tile, config.tile_overlap), y, config, eps)
    small = resize(x, scaled(h, w, work_size / min(h, w)))
    keys = getattr(getattr(generator, "config", None), "keys", None)
    seen = x if keys is not None and keys.image_size > work_size else small  # keys see what they trained on
    y = batch_keys(generator, seen, known)
    delta = _pushed(generator, small, perturbation(generator, small, y, config.tile, config.tile_overlap), y, config, eps)
    return resize(delta, (h, w), antialias=False)


def _pushed(generator: torch.nn.Module, x: torch.Tensor, delta: torch.Tensor, y: torch.Tensor | None,
            config: PoisonConfig, eps: float) -> torch.Tensor:
    """The generator's ``delta`` for ``x``, at the whole budget if ``config.amplitude`` asks for it,
    then ``config.push_steps`` steps of the feature push (:meth:`FeaturePush.refine`) if asked for."""
    if config.amplitude == "full":
        delta = full_amplitude(delta, eps)
    if not config.push_steps:
        return delta
    push = FeaturePush.from_keys(getattr(generator, "keys", None))
    if push is None or y is None:  # protect_folder refused such a file before any picture
        raise ConfigError("--push-steps needs a generator file that carries its keys' feature centres")
    return push.refine(x, delta, y, config.push_steps, eps)


def compare(written: torch.Tensor, original: torch.Tensor) -> tuple[int, float | None]:
    """The largest change in levels and the PSNR in dB (None if identical) of two uint8 pictures."""
    if not written.numel():
        return 0, None
    diff = torch.maximum(written, original) - torch.minimum(written, original)  # |a - b|, in uint8
    mse = torch.bincount(diff.flatten(), minlength=256).double().mul(torch.arange(256, dtype=torch.float64) ** 2).sum()
    mse = mse.item() / diff.numel()
    return int(diff.max().item()), (None if mse == 0 else round(10 * math.log10(255**2 / mse), 3))


