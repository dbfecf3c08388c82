"""The perturbation generator: a U-Net whose last layer is ``eps * tanh(.)``.

GUE (Liu et al., "Game-Theoretic Unlearnable Example Attacks", Algorithm 1) uses a U-Net
encoder-decoder g_w(x); the authors' code uses channels 64-128-256-512. The network is fully
convolutional, so any input size works: inputs are padded (reflect) up to a multiple of
2**depth and cropped back. With ``num_classes > 0`` the generator is *label-aware*: it
also sees the class as one-hot planes, A(x, y) in the paper's unified framework. With
``luma`` it writes one pattern for all three channels: the perturbation changes brightness
only, which a trainer's grayscale conversion keeps whole and JPEG's chroma subsampling
does not touch. With ``block`` = B the pattern is constant over B x B cells aligned with the
top-left corner of what the generator sees (the picture, or a tile of a large one): low
frequencies only, which JPEG's 8 x 8 quantisation keeps
(a cell's mean shifts every block's DC coefficient; docs/trainer.md, "Training against the trainer's preprocessing").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry
from .keys import ClusterKeys, KeyConfig


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator (embedded in the saved file)."""

    channels: tuple[int, ...] = (32, 64, 128)  # feature widths per U-Net level, deepest last
    in_channels: int = 3  # RGB
    num_classes: int = 0  # > 0: label-aware generator A(x, y) with one-hot label planes
    eps: float = 8 / 255  # L-inf budget on [0, 1] images
    keys: KeyConfig | None = None  # label-aware only: the key model that finds y in the picture itself
    luma: bool = False  # one pattern for the three channels: a change of brightness only
    block: int = 1  # > 1: the pattern is constant over block x block cells (low frequencies only)
    # > 0: no U-Net: one learned pattern per key, this many pixels a side (KeyPatternGenerator)
    patterns: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        if self.keys is None:
            del d["keys"]  # files without keys stay byte-compatible with older versions
        if not self.luma:
            del d["luma"]  # likewise
        if self.block == 1:
            del d["block"]  # likewise
        if not self.patterns:
            del d["patterns"]  # likewise
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        """Validated (types and ranges) before anything is built: raises ValueError saying which field."""
        if not isinstance(d, dict):
            raise ValueError("config must be an object")
        channels = d.get("channels", list(cls.channels))
        if (not isinstance(channels, list) or not 2 <= len(channels) <= MAX_LEVELS
                or not all(_is_int(c) and 1 <= c <= MAX_WIDTH for c in channels)):
            raise ValueError(f"channels must be 2-{MAX_LEVELS} integers in 1..{MAX_WIDTH}, not {channels!r}")
        in_channels, num_classes, eps = d.get("in_channels", 3), d.get("num_classes", 0), d.get("eps")
        if in_channels != 3 or not _is_int(in_channels):
            raise ValueError(f"in_channels must be 3, not {in_channels!r}")
        if not _is_int(num_classes) or not 0 <= num_classes <= 1024:
            raise ValueError(f"num_classes must be an integer in 0..1024, not {num_classes!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
            raise ValueError(f"eps must be a number in (0, 1], not {eps!r}")
        keys = KeyConfig.from_dict(d["keys"]) if d.get("keys") is not None else None
        luma = d.get("luma", False)
        if not isinstance(luma, bool):
            raise ValueError(f"luma must be true or false, not {luma!r}")
        block = d.get("block", 1)
        if not _is_int(block) or not 1 <= block <= MAX_BLOCK:
            raise ValueError(f"block must be an integer in 1..{MAX_BLOCK}, not {block!r}")
        patterns = d.get("patterns", 0)
        if not _is_int(patterns) or not 0 <= patterns <= MAX_PATTERN:
            raise ValueError(f"patterns must be an integer in 0..{MAX_PATTERN}, not {patterns!r}")
        if patterns and not num_classes:
            raise ValueError("patterns needs num_classes > 0: one pattern per key")
        return cls(channels=tuple(channels), in_channels=3, num_classes=num_classes, eps=float(eps), keys=keys,
                   luma=luma, block=block, patterns=patterns)


MAX_LEVELS = 6  # U-Net depth a file may ask for
MAX_WIDTH = 2048  # channels per level a file may ask for
MAX_BLOCK = 64  # pixels per side of a constant cell
MAX_PATTERN = 1024  # pixels per side of a key's pattern


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


GENERATOR_PRESETS: Registry[tuple[int, ...]] = Registry("--generator", {
    "small": (32, 64, 128),  # about 0.47M parameters: CPU default
    "paper": (64, 128, 256, 512),  # the GUE authors' U-Net, 7.7M parameters
    "patterns": (),  # no U-Net: one learned pattern per key (KeyPatternGenerator), the training size a side
})


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
        self.head = nn.Conv2d(ch[0], 1 if config.luma else config.in_channels, 1)
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
        return bounded(self.head(x)[:, :, :h, :w], self.config, self.eps)


def bounded(out: torch.Tensor, config: GeneratorConfig, eps: torch.Tensor) -> torch.Tensor:
    """A generator's last stage: ``block`` cells, ``eps * tanh``, and the ``luma`` copy to R, G and B."""
    b = config.block
    h, w = out.shape[-2:]
    if b > 1:  # one value per b x b cell (the last cells may be partial), spread back over its pixels
        cells = F.avg_pool2d(out, b, ceil_mode=True)
        out = cells.repeat_interleave(b, 2).repeat_interleave(b, 3)[:, :, :h, :w]
    out = eps * torch.tanh(out)
    if config.luma:  # equal in R, G and B: any grey conversion (weights summing to 1) keeps all of it
        out = out.expand(-1, config.in_channels, -1, -1)
    return out


# Adam's step on a pattern value is gen_lr times this: a pattern value is its parameter times
# PATTERN_GAIN, so the game's one learning rate (1e-3, set for U-Net weights) moves a pattern
# value 0.05 a step, the step examples/pattern_bank.py screened.
PATTERN_GAIN = 50.0


class KeyPatternGenerator(nn.Module):
    """g(x, y) = eps * tanh(P[y]): one learned pattern per key, the same for every picture of the
    key, enlarged or reduced (bilinear, after the bound) to the picture's size.

    Class-wise error-minimising noise (Huang et al. 2021) on the keys rather than on labels, trained
    by the same min-min steps as the U-Net. It reads nothing of the picture but its key.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        if not config.patterns or not config.num_classes:
            raise ValueError("a pattern generator needs patterns > 0 and num_classes > 0")
        self.config = config
        side, channels = config.patterns, 1 if config.luma else config.in_channels
        self.patterns = nn.Parameter(0.1 / PATTERN_GAIN * torch.randn(config.num_classes, channels, side, side))
        if config.keys is not None:
            self.keys = ClusterKeys(config.keys)
        self.register_buffer("eps", torch.tensor(float(config.eps)), persistent=False)

    key = UNetGenerator.key

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, 3, H, W) in [0, 1], read for its key (when ``y`` is not given) and its size."""
        y = self.key(x) if y is None else y
        if y is None:
            raise ValueError("this generator is label-aware and needs class labels")
        out = bounded(PATTERN_GAIN * self.patterns[y], self.config, self.eps)
        if out.shape[-2:] != x.shape[-2:]:  # bilinear: convex combinations, still within eps
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def build_generator(config: GeneratorConfig) -> nn.Module:
    """The generator a config describes: a U-Net, or one pattern per key (``patterns`` > 0)."""
    return KeyPatternGenerator(config) if config.patterns else UNetGenerator(config)

