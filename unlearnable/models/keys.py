"""Keys: the side information a label-aware generator needs, found in the pictures themselves.

A label-aware generator A(x, y) plants a pattern keyed by y. A data owner has no y, so the
key is computed from the picture: its nearest centre among K centres in a small feature
space (Unlearnable Clusters, Zhang et al., CVPR 2023, Sec. 3: K-means clusters, one pattern
per cluster, a new picture takes its nearest centre's). The features are the picture's mean
colour over a ``grid`` x ``grid`` partition, standardised: no weights to download, cheap at
any resolution, and the same for a picture before and after protection within 8/255.

With an ``encoder`` the features are instead a small CNN's 256 penultimate features
(centred, unit length: cosine K-means). The encoder is trained here (`unlearnable
train-encoder`, or the one inside the built-in generator) and travels inside every file
that uses it; nothing is downloaded.

The centres are either fitted by K-means on the owner's pictures (label-free), or the class
means of a labelled folder (``from_classes``), so that a generator trained on class folders
can still key pictures that arrive unsorted. Everything lives in buffers and is saved in the
protection file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .victims import SmallCNN

ENCODERS = {"small-cnn": (SmallCNN, 256)}  # name -> (class, feature width)
MAX_KEYS = 1024  # a file asking for more is refused as damaged
MAX_GRID = 64


@dataclass(frozen=True)
class KeyConfig:
    clusters: int = 10  # K: number of keys (K-means centres or classes)
    grid: int = 8  # features: mean colour over grid x grid cells, 3 * grid**2 values
    image_size: int = 32  # pixels: pictures are fitted (shorter side, centre crop) before the features
    source: str = "kmeans"  # kmeans (label-free) | classes (class means of a labelled folder)
    encoder: str | None = None  # None: mean colours on a grid; "small-cnn": a trained encoder's features
    encoder_classes: int = 0  # outputs of the encoder's own classifier head (to rebuild its weights)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "KeyConfig":
        """Validated: raises ValueError on a field of the wrong type or out of range."""
        if not isinstance(d, dict):
            raise ValueError("keys must be an object")
        out = {}
        for name, lo, hi in (("clusters", 2, MAX_KEYS), ("grid", 1, MAX_GRID), ("image_size", 8, 4096)):
            v = d.get(name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"keys.{name} must be an integer in {lo}..{hi}, not {v!r}")
            out[name] = v
        if d.get("source") not in ("kmeans", "classes"):
            raise ValueError(f"keys.source must be kmeans or classes, not {d.get('source')!r}")
        encoder = d.get("encoder")
        if encoder is not None:
            if encoder not in ENCODERS:
                raise ValueError(f"keys.encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
            n = d.get("encoder_classes")
            if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= MAX_KEYS:
                raise ValueError(f"keys.encoder_classes must be an integer in 2..{MAX_KEYS}, not {n!r}")
            out["encoder_classes"] = n
        return cls(**out, source=d["source"], encoder=encoder)

    @property
    def dims(self) -> int:
        return ENCODERS[self.encoder][1] if self.encoder else 3 * self.grid * self.grid


def fit_center(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) float -> (N, 3, size, size): shorter side to ``size``, centre crop."""
    h, w = x.shape[2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[:, :, top:top + size, left:left + size]
    return x


@torch.no_grad()
def kmeans(f: torch.Tensor, k: int, seed: int = 0, iterations: int = 30) -> torch.Tensor:
    """K centres (k, D) of features f (N, D), N >= k: k-means++ start, then Lloyd iterations."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    centres = [f[torch.randint(len(f), (1,), generator=g).item()]]
    dist = torch.cdist(f, centres[0][None])[:, 0] ** 2
    for _ in range(1, k):
        probs = (dist / dist.sum().clamp_min(1e-12)).cpu()
        centres.append(f[torch.multinomial(probs, 1, generator=g).item()])
        dist = torch.minimum(dist, torch.cdist(f, centres[-1][None])[:, 0] ** 2)
    c = torch.stack(centres)
    for _ in range(iterations):
        assign = torch.cdist(f, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, assign, f)
        counts = torch.bincount(assign, minlength=k).to(f.dtype)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)  # empty: keep
    return c


class ClusterKeys(nn.Module):
    """picture (N, 3, H, W) in [0, 1] -> key (N,) int64, the index of the nearest centre."""

    def __init__(self, config: KeyConfig):
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.dims))
        self.register_buffer("scale", torch.ones(config.dims))
        self.register_buffer("centres", torch.zeros(config.clusters, config.dims))
        if config.encoder:
            self.encoder = ENCODERS[config.encoder][0](config.encoder_classes).eval()

    def train(self, mode: bool = True) -> "ClusterKeys":
        super().train(mode)
        if self.config.encoder:
            self.encoder.eval()  # a key never changes: batch-norm statistics stay frozen
        return self

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        x = fit_center(x.float(), self.config.image_size)
        if not self.config.encoder:
            return F.adaptive_avg_pool2d(x, self.config.grid).flatten(1)
        return torch.cat([self.encoder.embed(b) for b in x.split(1024)])

    def _normalise(self, f: torch.Tensor) -> torch.Tensor:
        f = (f - self.mean) / self.scale
        return F.normalize(f, dim=1) if self.config.encoder else f

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._normalise(self._raw(x))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(self.features(x), self.centres).argmin(1)

    @torch.no_grad()
    def _standardise_on(self, x: torch.Tensor) -> torch.Tensor:
        f = self._raw(x)
        self.mean.copy_(f.mean(0))
        self.scale.copy_(torch.ones_like(self.scale) if self.config.encoder else f.std(0).clamp_min(1e-3))
        return self._normalise(f)

    @classmethod
    def _new(cls, config: KeyConfig, device, encoder: nn.Module | None) -> "ClusterKeys":
        keys = cls(config)
        if encoder is not None:
            keys.encoder.load_state_dict(encoder.state_dict())
        return keys.to(device).eval()

    @classmethod
    @torch.no_grad()
    def fit_kmeans(cls, x: torch.Tensor, config: KeyConfig, seed: int = 0, iterations: int = 30,
                   encoder: nn.Module | None = None) -> "ClusterKeys":
        """K-means (k-means++ start, Lloyd iterations) on pictures x (N, 3, S, S) in [0, 1].

        ``encoder``: the trained encoder whose features to cluster (``config.encoder`` names it).
        """
        keys = cls._new(config, x.device, encoder)
        f = keys._standardise_on(x)
        k = min(config.clusters, len(f))
        c = kmeans(f, k, seed, iterations)
        if k < config.clusters:  # fewer pictures than clusters: repeat centres, never chosen twice
            c = torch.cat([c, c[:config.clusters - k] + 1e6])
        keys.centres.copy_(c)
        return keys

    @classmethod
    @torch.no_grad()
    def from_classes(cls, x: torch.Tensor, y: torch.Tensor, config: KeyConfig,
                     encoder: nn.Module | None = None) -> "ClusterKeys":
        """Centres = the class means: unsorted pictures take their nearest class's key."""
        keys = cls._new(config, x.device, encoder)
        f = keys._standardise_on(x)
        sums = torch.zeros(config.clusters, f.shape[1], device=f.device).index_add_(0, y, f)
        counts = torch.bincount(y, minlength=config.clusters).to(f.dtype).clamp_min(1)
        keys.centres.copy_(sums / counts[:, None])
        return keys
