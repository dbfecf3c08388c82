"""The perturbation generator: a U-Net whose last layer is ``eps * tanh(.)``.

GUE (Liu et al., "Game-Theoretic Unlearnable Example Attacks", Algorithm 1) uses a U-Net
encoder-decoder g_w(x); the authors' code uses channels 64-128-256-512. The network is fully
convolutional, so any input size works: inputs are padded (reflect) up to a multiple of
2**depth and cropped back. With ``num_classes > 0`` the generator is *label-aware*: it
also sees the class as one-hot planes, A(x, y) in the paper's unified framework.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .keys import ClusterKeys, KeyConfig


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator (embedded in the saved file)."""

    channels: tuple[int, ...] = (32, 64, 128)  # feature widths per U-Net level, deepest last
    in_channels: int = 3  # RGB
    num_classes: int = 0  # > 0: label-aware generator A(x, y) with one-hot label planes
    eps: float = 8 / 255  # L-inf budget on [0, 1] images
    keys: KeyConfig | None = None  # label-aware only: the key model that finds y in the picture itself

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        if self.keys is None:
            del d["keys"]  # files without keys stay byte-compatible with older versions
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        known = {k: d[k] for k in ("channels", "in_channels", "num_classes", "eps") if k in d}
        known["channels"] = tuple(int(c) for c in known.get("channels", cls.channels))
        if d.get("keys") is not None:
            known["keys"] = KeyConfig.from_dict(d["keys"])
        return cls(**known)


GENERATOR_PRESETS = {
    "small": (32, 64, 128),  # about 0.47M parameters: CPU default
    "paper": (64, 128, 256, 512),  # the GUE authors' U-Net, 7.7M parameters
}


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNetGenerator(nn.Module):
    """g_w(x[, y]) -> perturbation in [-eps, eps], same spatial size as x."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        ch = list(config.channels)
        cin = config.in_channels + config.num_classes
        self.down = nn.ModuleList()
        for c in ch[:-1]:
            self.down.append(_double_conv(cin, c))
            cin = c
        self.bottleneck = _double_conv(ch[-2], ch[-1])  # the deepest level
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        cin = ch[-1]
        for c in reversed(ch[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, c, 2, stride=2))
            self.dec.append(_double_conv(2 * c, c))
            cin = c
        self.head = nn.Conv2d(ch[0], config.in_channels, 1)
        if config.keys is not None:
            self.keys = ClusterKeys(config.keys)
        self.register_buffer("eps", torch.tensor(float(config.eps)), persistent=False)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.config.channels) - 1)

    def key(self, x: torch.Tensor) -> torch.Tensor | None:
        """The key of each whole picture (N,), or None without a key model.

        Call it on whole pictures: tiles of one picture must share the picture's key.
        """
        return self.keys(x) if self.config.keys is not None else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, 3, H, W) in [0, 1]; y: (N,) class indices or keys (label-aware generators only).

        A generator with a key model finds y itself when it is not given (see :meth:`key`).
        """
        n, _, h, w = x.shape
        if self.config.num_classes:
            y = self.key(x) if y is None else y
            if y is None:
                raise ValueError("this generator is label-aware and needs class labels")
            planes = F.one_hot(y, self.config.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(n, -1, h, w)], dim=1)
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        out = self.eps * torch.tanh(self.head(x))
        return out[:, :, :h, :w]


def build_generator(config: GeneratorConfig) -> UNetGenerator:
    return UNetGenerator(config)
