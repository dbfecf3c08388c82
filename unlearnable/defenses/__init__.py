"""The countermeasure registry: `--defense` choices and `--help` are built from its keys."""

from __future__ import annotations

from typing import Callable

from ..registry import Registry
from .adversarial import AdversarialTraining
from .base import Defense
from .bitdepth import BitDepth
from .filters import Filter
from .grayscale import Grayscale
from .iss import ISS
from .jpeg import JPEG
from .mixing import CutMix, Cutout, Mixup
from .rescale import Rescale

DEFENSES: Registry[Callable[..., Defense]] = Registry("defense", {
    "none": lambda **kw: Defense("none", "no defense; the peak column is early stopping"),
    "jpeg": lambda quality=10, **kw: JPEG(f"jpeg-{quality}", f"JPEG re-encoding at quality {quality}", quality),
    "grayscale": lambda **kw: Grayscale("grayscale", "grayscale (3 equal channels)"),
    "bit-depth": lambda **kw: BitDepth("bit-depth", "2-bit colour depth", 2),
    "median": lambda **kw: Filter("median", "3x3 median filter", "median"),
    "mean": lambda **kw: Filter("mean", "3x3 mean filter", "mean"),
    "gaussian": lambda **kw: Filter("gaussian", "3x3 Gaussian filter", "gaussian"),
    "downscale": lambda **kw: Rescale("downscale", "downscale x0.5 then upscale (bilinear)", 0.5),
    "iss": lambda **kw: ISS("iss", "Image Shortcut Squeezing: grayscale + JPEG-10", 10),
    "mixup": lambda **kw: Mixup("mixup", "mixup, Beta(1, 1)"),
    "cutout": lambda **kw: Cutout("cutout", "cutout, half-side square"),
    "cutmix": lambda **kw: CutMix("cutmix", "cutmix, Beta(1, 1)"),
    "adv-training": lambda adv_eps=8 / 255, adv_text="8/255", **kw: AdversarialTraining(
        f"adv-training-{adv_text}", f"PGD adversarial training at {adv_text}", adv_eps),
})

JPEG_SWEEP = (10, 30, 50, 70, 90)


def build_defenses(names: list[str], sweep: bool = False, adv_eps: float = 8 / 255, adv_text: str = "8/255") -> list[Defense]:
    """Defense objects for ``names`` ("all" for the whole matrix); unknown names are an error."""
    if not names or "all" in names:
        names = list(DEFENSES)
    out = []
    for name in dict.fromkeys(names):
        make = DEFENSES.get(name)  # an unknown name is refused, with the list ("all" too, above)
        if name == "jpeg" and sweep:
            out += [make(quality=q) for q in JPEG_SWEEP]
        else:
            out.append(make(adv_eps=adv_eps, adv_text=adv_text))
    return out
