"""A compact ResNet (He et al. 2015; torchvision's layout, v1.5 strides), no torchvision.

ResNet-18/34 use two 3x3 convolutions per block; ResNet-50 uses 1x1 -> 3x3 -> 1x1
"bottleneck" blocks four times wider at the output, with the stride on the 3x3 (v1.5).
The shapes are rows of the model table (family "cnn": ``resnet_block``,
``resnet_stages``, ``resnet_width``); ``resnet-tiny`` is the smallest network of the
same shape, for tests.

The classes are built inside a function so that importing this module does not import
torch (gpuscout's rule: importing any of its modules stays cheap).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

from gpuscout.fit.models import find_model
from gpuscout.fit.spec import ModelSpec


@functools.cache
def _classes() -> SimpleNamespace:
    from torch import Tensor, nn

    def conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]

    class Block(nn.Module):
        def __init__(self, body: list[nn.Module], cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(*body)
            self.relu = nn.ReLU(inplace=True)
            self.shortcut = (
                nn.Sequential(*conv_bn(cin, cout, 1, stride))
                if stride != 1 or cin != cout
                else nn.Identity()
            )
            # Zero-init the last BN's scale: each block starts as the identity, which
            # makes the first steps stable (Goyal et al. 2017, torchvision's option).
            last_bn = body[-1]
            assert isinstance(last_bn, nn.BatchNorm2d)
            nn.init.zeros_(last_bn.weight)

        def forward(self, x: Tensor) -> Tensor:
            out: Tensor = self.relu(self.body(x) + self.shortcut(x))
            return out

    def basic(cin: int, width: int, stride: int) -> tuple[nn.Module, int]:
        body = [*conv_bn(cin, width, 3, stride), nn.ReLU(inplace=True), *conv_bn(width, width, 3)]
        return Block(body, cin, width, stride), width

    def bottleneck(cin: int, width: int, stride: int) -> tuple[nn.Module, int]:
        cout = width * 4
        body = [
            *conv_bn(cin, width, 1),
            nn.ReLU(inplace=True),
            *conv_bn(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *conv_bn(width, cout, 1),
        ]
        return Block(body, cin, cout, stride), cout

    def resnet(kind: str, blocks: tuple[int, ...], stem: int, num_classes: int) -> nn.Module:
        make = basic if kind == "basic" else bottleneck
        layers: list[nn.Module] = [
            *conv_bn(3, stem, 7, 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        ]
        cin = stem
        for stage, count in enumerate(blocks):
            for i in range(count):
                block, cin = make(cin, stem * 2**stage, 2 if stage > 0 and i == 0 else 1)
                layers.append(block)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
        model = nn.Sequential(*layers)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        return model

    return SimpleNamespace(resnet=resnet)


def make_resnet(model: str | ModelSpec, num_classes: int | None = None) -> Any:
    """The ResNet of a model-table row (or its id) with ``num_classes`` outputs (None:
    the row's), on the current device."""
    spec = find_model(model) if isinstance(model, str) else model
    if spec.family != "cnn" or spec.resnet_block is None:
        raise ValueError(f"{spec.id} is not a ResNet this module can build")
    classes = num_classes or spec.num_classes or 1000
    stages = spec.resnet_stages
    return _classes().resnet(spec.resnet_block, stages, spec.resnet_width, classes)
