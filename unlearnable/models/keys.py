"""Keys: the side information a label-aware generator needs, found in the pictures themselves.

A label-aware generator A(x, y) plants a pattern keyed by y. A data owner has no y, so the
key is computed from the picture: its nearest centre among K centres in a small feature
space (Unlearnable Clusters, Zhang et al., CVPR 2023, Sec. 3: K-means clusters, one pattern
per cluster, a new picture takes its nearest centre's). The features are the picture's mean
colour over a ``grid`` x ``grid`` partition, standardised: no weights to download, cheap at
any resolution, and the same for a picture before and after protection within 8/255.

With an ``encoder`` the features are a network's pooled features (centred, unit length:
cosine K-means). ``efficientnet-lite2`` and ``-lite0`` are ImageNet-trained networks installed as
packages (:mod:`unlearnable.models.pretrained`): a file records its name and weight hash, not
its weights. ``small-cnn`` is a small CNN trained here (`unlearnable train-encoder`) on a
few labelled classes; it travels inside every file that uses it. Nothing is downloaded.

The centres are either fitted by K-means on the owner's pictures (label-free), or the class
means of a labelled folder (``from_classes``), so that a generator trained on class folders
can still key pictures that arrive unsorted. Everything lives in buffers and is saved in the
protection file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..resize import fit_center
from .pretrained import PRETRAINED, check_encoder, load_encoder
from .victims import SmallCNN

TRAINED_ENCODERS = {"small-cnn": (SmallCNN, 256)}  # trained here, weights in the file: name -> (class, width)
ENCODERS = (*TRAINED_ENCODERS, *PRETRAINED)  # every encoder a key model may name
OnProgress = Callable[[int, int], None]  # (pictures done, pictures in all)
MAX_KEYS = 1024  # a file asking for more is refused as damaged
MAX_GRID = 64
KEY_BATCH = 8  # pictures per forward pass of an ImageNet encoder


@dataclass(frozen=True)
class KeyConfig:
    clusters: int = 10  # K: number of keys (K-means centres or classes)
    grid: int = 8  # features: mean colour over grid x grid cells, 3 * grid**2 values
    image_size: int = 32  # pixels: pictures are fitted (shorter side, centre crop) before the features
    source: str = "kmeans"  # kmeans (label-free) | classes (class means of a labelled folder)
    encoder: str | None = None  # None: mean colours on a grid; else an ENCODERS name
    encoder_classes: int = 0  # small-cnn: outputs of the encoder's own classifier head (to rebuild its weights)
    encoder_sha256: str | None = None  # an ImageNet encoder: SHA-256 of the weights the keys were found with
    # `poison --push-steps`: each key's centre in this ImageNet network's features (game/push.py)
    push: str | None = None
    push_sha256: str | None = None  # of that network's weights
    push_size: int = 96  # pixels that network sees

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.encoder_sha256 is None:
            del d["encoder_sha256"]  # files without one stay byte-compatible with older versions
        if self.push is None:
            for name in ("push", "push_sha256", "push_size"):
                del d[name]
        return d

    @property
    def pretrained(self) -> bool:
        return self.encoder in PRETRAINED

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
        if encoder in PRETRAINED:
            sha = d.get("encoder_sha256")
            if not isinstance(sha, str) or len(sha) != 64:
                raise ValueError(f"keys.encoder_sha256 must be a SHA-256 in hex, not {sha!r}")
            check_encoder(encoder, sha)  # installed, and the very weights the keys were found with
            out["encoder_sha256"] = sha
        elif encoder is not None:
            if encoder not in ENCODERS:
                raise ValueError(f"keys.encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
            n = d.get("encoder_classes")
            if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= MAX_KEYS:
                raise ValueError(f"keys.encoder_classes must be an integer in 2..{MAX_KEYS}, not {n!r}")
            out["encoder_classes"] = n
        push = d.get("push")
        if push is not None:
            sha, size = d.get("push_sha256"), d.get("push_size")
            if push not in PRETRAINED:
                raise ValueError(f"keys.push must be one of {', '.join(PRETRAINED)}, not {push!r}")
            if not isinstance(sha, str) or len(sha) != 64:
                raise ValueError(f"keys.push_sha256 must be a SHA-256 in hex, not {sha!r}")
            if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
                raise ValueError(f"keys.push_size must be an integer in 8..4096, not {size!r}")
            check_encoder(push, sha)
            out.update(push=push, push_sha256=sha, push_size=size)
        return cls(**out, source=d["source"], encoder=encoder)

    @property
    def dims(self) -> int:
        if self.pretrained:
            return PRETRAINED[self.encoder].features
        return TRAINED_ENCODERS[self.encoder][1] if self.encoder else 3 * self.grid * self.grid


@torch.no_grad()
def kmeans(f: torch.Tensor, k: int, seed: int = 0, iterations: int = 30, starts: int = 1) -> torch.Tensor:
    """K centres (k, D) of features f (N, D), N >= k: k-means++ start, then Lloyd iterations.

    ``starts`` > 1 runs that many k-means++ starts (seeds ``seed``, ``seed + 1``, ...) and keeps
    the centres with the smallest within-cluster squared distance, as scikit-learn's ``n_init``.
    """
    best, best_cost = None, float("inf")
    for s in range(seed, seed + starts):
        c = _lloyd(f, _kmeans_pp(f, k, s), iterations)
        cost = float(torch.cdist(f, c).min(1).values.pow(2).sum())
        if cost < best_cost:
            best, best_cost = c, cost
    return best


def _kmeans_pp(f: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator(device="cpu").manual_seed(seed)
    centres = [f[torch.randint(len(f), (1,), generator=g).item()]]
    dist = torch.cdist(f, centres[0][None])[:, 0] ** 2
    for _ in range(1, k):
        probs = (dist / dist.sum().clamp_min(1e-12)).cpu()
        centres.append(f[torch.multinomial(probs, 1, generator=g).item()])
        dist = torch.minimum(dist, torch.cdist(f, centres[-1][None])[:, 0] ** 2)
    return torch.stack(centres)


def _lloyd(f: torch.Tensor, c: torch.Tensor, iterations: int) -> torch.Tensor:
    k = len(c)
    for _ in range(iterations):
        assign = torch.cdist(f, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, assign, f)
        counts = torch.bincount(assign, minlength=k).to(f.dtype)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)  # empty: keep
    return c


def nearest_neighbours(f: torch.Tensor, n: int, chunk: int = 2048) -> torch.Tensor:
    """(N, n) indices of each unit feature's n most similar others (itself left out), computed a
    block of rows at a time so that memory grows with N, not N squared."""
    out = []
    for start in range(0, len(f), chunk):
        sim = f[start:start + chunk] @ f.T
        rows = torch.arange(len(sim), device=f.device)
        sim[rows, rows + start] = -float("inf")
        out.append(sim.topk(min(n, len(f) - 1), dim=1).indices)
    return torch.cat(out)


def refine_by_neighbours(f: torch.Tensor, c: torch.Tensor, neighbours: int = 20, seed: int = 0,
                         steps: int = 300, balance: float = 5.0) -> torch.Tensor:
    """Centres (k, D) of a clustering of unit features f (N, D) that keeps neighbours together.

    K-means cuts the feature space into cells; a picture near a cell's border often lands apart
    from its nearest neighbours, which mostly share its class. After SCAN (Van Gansbeke et al.,
    ECCV 2020, Eq. 2), a linear soft assignment, started at the centres ``c``, is trained for
    ``steps`` full-batch Adam steps to give every picture and one of its ``neighbours`` nearest
    neighbours (drawn anew each step) the same cluster, with ``balance`` times the entropy of
    the mean assignment against collapsing into few clusters. The result is returned as the
    centroids of its clusters, so that a key stays the nearest centre, as before.
    """
    k = len(c)
    if len(f) <= k or neighbours < 1:
        return c
    g = torch.Generator(device="cpu").manual_seed(seed)
    near = nearest_neighbours(f, neighbours)
    head = nn.Linear(f.shape[1], k).to(f.device)
    with torch.no_grad():
        head.weight.copy_(F.normalize(c, dim=1) * 10)  # softmax of 10 x cosine: the K-means cells, softened
        head.bias.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-4)
    rows = torch.arange(len(f), device=f.device)
    with torch.enable_grad():
        for _ in range(steps):
            p = F.softmax(head(f), 1)
            j = near[rows, torch.randint(near.shape[1], (len(f),), generator=g).to(f.device)]
            agree = -torch.log((p * p[j]).sum(1).clamp_min(1e-8)).mean()
            mean = p.mean(0)
            loss = agree + balance * (mean * mean.clamp_min(1e-8).log()).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        assign = head(f).argmax(1)
    sums = torch.zeros_like(c).index_add_(0, assign, f)
    counts = torch.bincount(assign, minlength=k).to(f.dtype)
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)  # empty: keep K-means'


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


class ClusterKeys(nn.Module):
    """picture (N, 3, H, W) in [0, 1] (or uint8) -> key (N,) int64, the index of the nearest centre."""

    def __init__(self, config: KeyConfig):
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.dims))
        self.register_buffer("scale", torch.ones(config.dims))
        self.register_buffer("centres", torch.zeros(config.clusters, config.dims))
        if config.push:  # each key's centre in the push network's features, and their mean
            width = PRETRAINED[config.push].features
            self.register_buffer("push_mean", torch.zeros(width))
            self.register_buffer("push_centres", torch.zeros(config.clusters, width))
        if config.encoder and not config.pretrained:
            self.encoder = TRAINED_ENCODERS[config.encoder][0](config.encoder_classes).eval()

    def train(self, mode: bool = True) -> "ClusterKeys":
        super().train(mode)
        if self.config.encoder and not self.config.pretrained:
            self.encoder.eval()  # a key never changes: batch-norm statistics stay frozen
        return self

    def _raw(self, x: torch.Tensor, on_progress: OnProgress | None = None) -> torch.Tensor:
        """Raw features of pictures in [0, 1] (float) or 0-255 (uint8), any size, in batches."""
        size = self.config.image_size
        if not self.config.encoder:
            embed, batch = lambda b: F.adaptive_avg_pool2d(b, self.config.grid).flatten(1), 4096
        else:  # the pretrained network is shared, not a submodule: its weights stay out of the file
            embed = (load_encoder(self.config.encoder, x.device) if self.config.pretrained else self.encoder).embed
            # small batches: an ImageNet network's activations at key size then stay in the CPU's
            # caches (examples/key_speed.py measures it); large key sizes fit in memory too
            batch = KEY_BATCH if self.config.pretrained else 1024
        out = []
        for b in x.split(batch):
            out.append(embed(fit_center(_unit(b), size)))
            if on_progress:
                on_progress(min(len(out) * batch, len(x)), len(x))
        return torch.cat(out)

    def raw_features(self, x: torch.Tensor, on_progress: OnProgress | None = None) -> torch.Tensor:
        """The encoder's (or grid's) features before standardisation, as K-means is fitted on."""
        return self._raw(x, on_progress)

    def _normalise(self, f: torch.Tensor) -> torch.Tensor:
        f = (f - self.mean) / self.scale
        return F.normalize(f, dim=1) if self.config.encoder else f

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._normalise(self._raw(x))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(self.features(x), self.centres).argmin(1)

    @torch.no_grad()
    def _standardise_on(self, x: torch.Tensor, on_progress: OnProgress | None = None) -> torch.Tensor:
        return self.standardise(self._raw(x, on_progress))

    @torch.no_grad()
    def standardise(self, f: torch.Tensor) -> torch.Tensor:
        """Centre (and for colour features scale) on these raw features; them, normalised."""
        self.mean.copy_(f.mean(0))
        self.scale.copy_(torch.ones_like(self.scale) if self.config.encoder else f.std(0).clamp_min(1e-3))
        return self._normalise(f)

    def with_push(self, network: str, size: int, mean: torch.Tensor, centres: torch.Tensor) -> "ClusterKeys":
        """A copy of these keys that also carries each key's centre in ``network``'s features.

        ``mean`` (D,) and unit ``centres`` (K, D) as :class:`unlearnable.game.push.FeaturePush`
        holds them; the file then lets `poison --push-steps` push pictures it never saw.
        """
        config = replace(self.config, push=network, push_sha256=PRETRAINED[network].sha256, push_size=size)
        keys = ClusterKeys(config).to(self.centres.device)
        keys.load_state_dict({**self.state_dict(), "push_mean": mean, "push_centres": centres})
        return keys.eval()

    @classmethod
    def _new(cls, config: KeyConfig, device, encoder: nn.Module | None) -> "ClusterKeys":
        keys = cls(config)
        if encoder is not None and not config.pretrained:
            keys.encoder.load_state_dict(encoder.state_dict())
        return keys.to(device).eval()

    @classmethod
    @torch.no_grad()
    def raw_features_of(cls, x: torch.Tensor, config: KeyConfig, encoder: nn.Module | None = None,
                        on_progress: OnProgress | None = None) -> torch.Tensor:
        """x's :meth:`raw_features` under ``config``, for :meth:`fit_and_assign`'s ``raw``."""
        return cls._new(config, x.device, encoder).raw_features(x, on_progress)

    @classmethod
    @torch.no_grad()
    def fit_kmeans(cls, x: torch.Tensor, config: KeyConfig, seed: int = 0, iterations: int = 30,
                   encoder: nn.Module | None = None, starts: int = 1) -> "ClusterKeys":
        """K-means (k-means++ start, Lloyd iterations) on pictures x (N, 3, S, S) in [0, 1].

        ``encoder``: the trained encoder whose features to cluster (``config.encoder`` names it).
        """
        return cls.fit_and_assign(x, config, seed, iterations, encoder, starts)[0]

    @classmethod
    @torch.no_grad()
    def fit_and_assign(cls, x: torch.Tensor, config: KeyConfig, seed: int = 0, iterations: int = 30,
                       encoder: nn.Module | None = None, starts: int = 1,
                       on_progress: OnProgress | None = None, neighbours: int = 0,
                       raw: torch.Tensor | None = None) -> tuple["ClusterKeys", torch.Tensor]:
        """:meth:`fit_kmeans`, and the key of every picture of x, from one pass of the encoder.

        ``neighbours`` > 0: the K-means centres refined by :func:`refine_by_neighbours`.
        ``raw``: x's :meth:`raw_features` if already computed (the pass is then skipped).
        """
        keys = cls._new(config, x.device, encoder)
        f = keys._standardise_on(x, on_progress) if raw is None else keys.standardise(raw)
        k = min(config.clusters, len(f))
        c = kmeans(f, k, seed, iterations, starts)
        if neighbours:
            c = refine_by_neighbours(f, c, neighbours, seed)
        if k < config.clusters:  # fewer pictures than clusters: repeat centres, never chosen twice
            c = torch.cat([c, c[:config.clusters - k] + 1e6])
        keys.centres.copy_(c)
        return keys, torch.cdist(f, keys.centres).argmin(1)

    @classmethod
    @torch.no_grad()
    def from_classes(cls, x: torch.Tensor, y: torch.Tensor, config: KeyConfig,
                     encoder: nn.Module | None = None, on_progress: OnProgress | None = None) -> "ClusterKeys":
        """Centres = the class means: unsorted pictures take their nearest class's key."""
        keys = cls._new(config, x.device, encoder)
        f = keys._standardise_on(x, on_progress)
        sums = torch.zeros(config.clusters, f.shape[1], device=f.device).index_add_(0, y, f)
        counts = torch.bincount(y, minlength=config.clusters).to(f.dtype).clamp_min(1)
        keys.centres.copy_(sums / counts[:, None])
        return keys
