"""`train-encoder`: a small CNN whose features make good keys (see :mod:`unlearnable.models.keys`).

Clusters of mean colours are a weak key: on CIFAR-10 a cluster holds its most common class
only about 24% of the time, so the pattern planted per cluster tells a trainer little about
its own classes. The features of a CNN trained to tell *some* classes apart group pictures
by content, also pictures of classes it never saw (docs/label-free.md, "Earlier measurements with the small-CNN encoder").
The encoder is trained with labels once, by whoever has them (the built-in one on CIFAR-10
classes the benchmark keeps apart); a data owner then clusters their own unlabelled pictures
with it, and every generator trained that way carries the encoder inside its file.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from ..data import load_labelled
from ..errors import UnlearnableError
from ..io.genfile import save_keys
from ..models.keys import ClusterKeys, KeyConfig
from ..models.victims import SmallCNN
from .victim import RECIPES, train_victim


@dataclass(frozen=True)
class EncoderTrainingConfig:
    epochs: int = 15  # passes over the labelled folder
    image_size: int = 32  # pixels the encoder sees (pictures are fitted to it)
    holdout: float = 0.1  # share of pictures kept aside to report accuracy, 0-0.5
    seed: int = 0


@dataclass
class EncoderResult:
    output: str
    images: int
    classes: int
    holdout_accuracy: float  # how well the encoder tells the classes apart on pictures it did not train on
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def train_encoder(
    data_root: Path,
    out: Path,
    config: EncoderTrainingConfig,
    device: torch.device,
    on_load: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> EncoderResult:
    """Train the small CNN on a labelled folder and write its key model (class means as centres)."""
    if not 0 <= config.holdout <= 0.5:
        raise UnlearnableError(f"holdout {config.holdout} must be between 0 and 0.5")
    start = time.perf_counter()
    data = load_labelled(data_root, config.image_size, seed=config.seed, on_progress=on_load)
    k = len(data.class_names)
    if k < 2:
        raise UnlearnableError(f"{data_root} has {k} class folder; an encoder learns from at least 2 classes")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed))
    n_test = max(1, int(len(data) * config.holdout)) if config.holdout > 0 else 0
    test, train = data.subset(order[:n_test]), data.subset(order[n_test:])
    model = SmallCNN(k)
    recipe = replace(RECIPES["quick"], epochs=config.epochs)
    held = test if n_test else train
    result = train_victim(train.x, train.y, held.x, held.y, recipe, k, config.seed, device,
                          on_epoch=on_epoch, model=model)
    kc = KeyConfig(clusters=k, image_size=config.image_size, source="classes", encoder="small-cnn", encoder_classes=k)
    keys = ClusterKeys.from_classes(data.x.to(device).float().div_(255), data.y.to(device), kc, model.float().eval())
    seconds = time.perf_counter() - start
    save_keys(out, keys, {**asdict(config), "images": len(data), "holdout_accuracy": result.accuracy},
              data.class_names)
    return EncoderResult(str(out), len(data), k, result.accuracy, seconds)
