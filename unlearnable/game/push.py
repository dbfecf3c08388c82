"""A push on an ImageNet network's features, against trainers who start from that network.

The game's shortcut is learned by a network trained from scratch; a trainer who fits a new
last layer on frozen ImageNet features (or fine-tunes from them) barely sees it
(docs/trainer.md, "The trainer who starts from the ImageNet network"). TAP (Fowl et al. 2021,
"Adversarial examples make strong poisons") protects against such a trainer by moving every
picture's features towards another class's: the trainer then learns each class from features
of another. Here it works without labels, on the keys: the perturbation of a picture with key
k moves the frozen network's pooled features towards the centre of key (k + 1) mod K, as the
generator's second loss beside the min-min one (``--feature-push``).

The features are the network's pooled features at ``size`` pixels (the pictures enlarged as a
fine-tuning trainer enlarges them), centred on the folder's mean and scaled to unit length;
the loss is the cross-entropy of their cosine similarities to the key centres (times
``scale``) with the target key.

The same loss serves `poison --push-steps N` (:meth:`FeaturePush.refine`): after the
generator's forward pass, N signed gradient steps on each picture's perturbation, within the
budget, with the centres the generator file carries (:meth:`ClusterKeys.with_push`). That
moves the features much further than the generator alone can, and it overwrites much of the
generator's pattern: measured in docs/trainer.md, "Pushing each picture: `poison --push-steps`".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..models.pretrained import PretrainedEncoder, load_encoder
from ..resize import resize


def _pooled(encoder: PretrainedEncoder, x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, D): the network's pooled features of the pictures at ``size`` pixels."""
    return encoder.pooled(x if x.shape[-2:] == (size, size) else resize(x, (size, size)))


@torch.no_grad()
def clean_features(encoder: PretrainedEncoder, x: torch.Tensor, size: int,
                   on_progress: Callable[[int, int], None] | None = None, chunk: int = 64) -> torch.Tensor:
    """Pooled features of pictures ``x`` (uint8 or [0, 1]) as they are, a chunk at a time."""
    if on_progress:  # the pass starts: a count from zero, even if one chunk holds every picture
        on_progress(0, len(x))
    out = []
    for b in x.split(chunk):
        out.append(_pooled(encoder, b.float().div_(255) if b.dtype == torch.uint8 else b, size))
        if on_progress:
            on_progress(min(len(out) * chunk, len(x)), len(x))
    return torch.cat(out)


PUSH_NETWORK = "efficientnet-lite0"  # whose centres a file carries when nothing names another network
PUSH_SIZE = 96


def push_centres(f: torch.Tensor, y: torch.Tensor, keys: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features ``f`` (N, D) of pictures with keys ``y`` -> their mean (D,) and each key's
    unit centre (K, D): the unit mean of its pictures' centred, unit features."""
    mean = f.mean(0)
    unit = F.normalize(f - mean, dim=1)
    centres = torch.zeros(keys, unit.shape[1], device=unit.device).index_add_(0, y, unit)
    return mean, F.normalize(centres, dim=1)


@dataclass
class FeaturePush:
    encoder: PretrainedEncoder  # the frozen ImageNet network: no parameter of it learns
    mean: torch.Tensor  # (D,) mean feature of the clean pictures
    centres: torch.Tensor  # (K, D) unit centre of each key's clean features
    size: int  # pixels the network sees
    batch: int  # pictures of each step's batch that the push is computed on
    weight: float = 1.0
    scale: float = 10.0  # inverse temperature of the cosine similarities

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, D) centred unit features, differentiable in x."""
        return F.normalize(_pooled(self.encoder, x, self.size) - self.mean, dim=1)

    def loss(self, x: torch.Tensor, delta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The push's loss on the first ``batch`` pictures: their protected features towards key y + 1."""
        x, delta, y = x[:self.batch], delta[:self.batch], y[:self.batch]
        logits = self.scale * self.features((x + delta).clamp(0, 1)) @ self.centres.T
        return self.weight * F.cross_entropy(logits.float(), (y + 1) % len(self.centres))

    def refine(self, x: torch.Tensor, delta: torch.Tensor, y: torch.Tensor, steps: int, eps: float) -> torch.Tensor:
        """``delta`` after ``steps`` signed gradient steps of ``eps / 4`` on every picture's push loss, in [-eps, eps].

        Each picture's step depends on its own loss only (the sign of a sum's gradient), so a
        picture gets the same perturbation in any batch.
        """
        d = delta.detach().clone()
        target = (y + 1) % len(self.centres)
        with torch.enable_grad():
            for _ in range(steps):
                d.requires_grad_(True)
                (g,) = torch.autograd.grad(self.step_loss((x + d).clamp(0, 1), target), d)
                d = (d.detach() - eps / 4 * g.sign()).clamp_(-eps, eps)
        return d

    def step_loss(self, protected: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The summed push loss of protected pictures towards keys ``target``: what each of
        :meth:`refine`'s steps descends (examples/push_layers.py swaps it for a loss on more layers)."""
        logits = self.scale * self.features(protected) @ self.centres.T
        return F.cross_entropy(logits.float(), target, reduction="sum")

    @classmethod
    def from_keys(cls, keys) -> "FeaturePush | None":
        """The push a key model carries (:meth:`ClusterKeys.with_push`), or None if it carries none."""
        name = getattr(getattr(keys, "config", None), "push", None)
        if name is None:
            return None
        encoder = load_encoder(name, keys.push_centres.device)
        return cls(encoder, keys.push_mean, keys.push_centres, keys.config.push_size, batch=0)

    @classmethod
    def fit(cls, name: str, x: torch.Tensor, y: torch.Tensor, keys: int, *, size: int, batch: int, weight: float,
            raw: torch.Tensor | None = None, on_progress: Callable[[int, int], None] | None = None) -> "FeaturePush":
        """The push of network ``name`` for pictures ``x`` (uint8 or [0, 1]) with keys ``y`` (N,) in [0, keys).

        ``raw``: the pictures' :func:`clean_features`, when already computed.
        """
        encoder = load_encoder(name, x.device)
        f = clean_features(encoder, x, size, on_progress) if raw is None else raw
        return cls(encoder, *push_centres(f, y, keys), size, batch, weight)
