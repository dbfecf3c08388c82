"""Victim classifiers (the follower in the game, and the would-be trainer in `evaluate`).

Images enter in [0, 1]; per-channel normalization is the model's first layer. All models
end in global average pooling, so any input size works.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..registry import Registry

# CIFAR-10 statistics; a fixed, documented normalization is enough for every dataset we use.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """About 0.6M parameters, 5 conv layers (32-64-128-128-256), pooling early to stay cheap on a CPU."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            Normalize(),
            _conv_bn(3, 32), nn.MaxPool2d(2),
            _conv_bn(32, 64), nn.MaxPool2d(2),
            _conv_bn(64, 128), _conv_bn(128, 128), nn.MaxPool2d(2),
            _conv_bn(128, 256),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, num_classes),
        )

    def forward(self, x):
        return self.net(x)

    def embed(self, x):
        """The 256 features before the classifier: what a key model clusters."""
        return self.net[:-1](x)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18, CIFAR variant (3x3 stem, no max-pool), as in the GUE paper."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.norm = Normalize()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))

    def forward(self, x):
        return self.head(self.layers(self.stem(self.norm(x))))


class WideBlock(nn.Module):
    """Pre-activation wide residual block (Zagoruyko & Komodakis 2016)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        o = torch.relu(self.bn1(x))
        y = self.conv2(torch.relu(self.bn2(self.conv1(o))))
        return y + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(nn.Module):
    """WRN-depth-width for small images (WRN-28-10: 36.5M parameters)."""

    def __init__(self, num_classes: int = 10, depth: int = 28, width: int = 10):
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        layers = [Normalize(), nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)]
        cin = widths[0]
        for i, stride in enumerate((1, 2, 2)):
            for j in range(n):
                layers.append(WideBlock(cin, widths[i + 1], stride if j == 0 else 1))
                cin = widths[i + 1]
        layers += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def _torchvision(name: str, num_classes: int) -> nn.Module:
    """torchvision architectures (random init, nothing downloaded) adapted to small images:
    a stride-1 3x3 stem and no early max-pool, so 32x32 inputs keep their detail."""
    from torchvision import models

    if name == "resnet50":
        m = models.resnet50(weights=None, num_classes=num_classes)
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
    elif name == "vgg16-bn":
        m = models.vgg16_bn(weights=None, num_classes=num_classes)
        m.avgpool = nn.AdaptiveAvgPool2d(1)
        m.classifier = nn.Linear(512, num_classes)
    elif name == "densenet121":
        m = models.densenet121(weights=None, num_classes=num_classes)
        m.features.conv0 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.features.pool0 = nn.Identity()
    elif name == "mobilenetv2":
        m = models.mobilenet_v2(weights=None, num_classes=num_classes)
        m.features[0][0].stride = (1, 1)
    else:  # pragma: no cover - guarded by the registry
        raise KeyError(name)
    return nn.Sequential(Normalize(), m)


class PretrainedVictim(nn.Module):
    """The shipped ImageNet network as a trainer who fine-tunes one would use it.

    Pictures are resized to ``size`` pixels and scaled to [-1, 1] inside the model; the
    ImageNet head is replaced by a new one of ``num_classes``. ``frozen``: a linear probe, only
    the new head learns and the backbone's batch-norm statistics stay the ImageNet ones.
    """

    def __init__(self, num_classes: int, size: int = 96, frozen: bool = False, network: str = "efficientnet-lite0"):
        super().__init__()
        import copy

        from .pretrained import load_encoder

        self.net = copy.deepcopy(load_encoder(network).net)  # the shared copy stays frozen
        self.net.reset_classifier(num_classes)
        self.net.requires_grad_(not frozen)
        self.net.get_classifier().requires_grad_(True)
        self.size, self.frozen = size, frozen

    def train(self, mode: bool = True) -> "PretrainedVictim":
        super().train(mode)
        if self.frozen:
            self.net.eval()  # dropout and batch norm as at inference: only the head's weights move
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True,
                                          align_corners=False)
        return self.net(x * 2 - 1)


VICTIMS: Registry[Callable[[int], nn.Module]] = Registry("--arch", {
    "small-cnn": SmallCNN,
    "resnet18": ResNet18,
    "resnet50": lambda k: _torchvision("resnet50", k),
    "vgg16-bn": lambda k: _torchvision("vgg16-bn", k),
    "densenet121": lambda k: _torchvision("densenet121", k),
    "mobilenetv2": lambda k: _torchvision("mobilenetv2", k),
    "wrn-28-10": lambda k: WideResNet(k, 28, 10),
    "efficientnet-lite0": lambda k: PretrainedVictim(k),  # ImageNet-pretrained, every layer fine-tuned
    "efficientnet-lite0-probe": lambda k: PretrainedVictim(k, frozen=True),  # a new last layer on frozen features
    # the larger network of the same family: a trainer who starts from another network than the
    # one `poison --push-steps` moves the features of
    "efficientnet-lite2": lambda k: PretrainedVictim(k, network="efficientnet-lite2"),
    "efficientnet-lite2-probe": lambda k: PretrainedVictim(k, frozen=True, network="efficientnet-lite2"),
})


def build_victim(name: str, num_classes: int) -> nn.Module:
    return VICTIMS.get(name)(num_classes)
