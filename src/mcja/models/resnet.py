"""ResNet-18/34/50 with torchvision's state-dict layout, so torchvision's ImageNet files load unchanged."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mcja.errors import ConfigError

# depth -> (block type, blocks per stage); the only depths with published torchvision V1 weights we support.
RESNET_LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
STAGES = ("layer1", "layer2", "layer3", "layer4")


class StridedConv2d(nn.Conv2d):
    """A 3x3 stride-2 convolution that runs in float32 where oneDNN's bf16 kernel computes it wrongly.

    On CPUs with AMX (oneDNN 3.12, torch 2.13), a bf16 3x3 stride-2 channels-last convolution whose output is
    one column wide (input width <= 2) returns wrong values or NaN; narrower inputs than 48 pixels reach it in
    layer4. Only that case leaves autocast (the weights and numerics are a plain Conv2d's everywhere else); see
    docs/deviations.md.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] <= 2 and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float()).to(torch.get_autocast_dtype("cpu"))
        return super().forward(x)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    kind = StridedConv2d if (kernel, stride) == (3, 2) else nn.Conv2d
    return kind(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


def _downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """Projection shortcut, needed when the block changes the resolution or the width."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(cin, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 bottleneck; the stride sits on the 3x3 conv as in torchvision ("V1.5")."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = _conv(cin, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """ResNet trunk (stem + four stages) and, optionally, the 1000-way ImageNet head `fc`."""

    def __init__(self, depth: int, last_stride: int = 2, with_fc: bool = True) -> None:
        super().__init__()
        kind, blocks = resnet_layout(depth)
        if last_stride not in (1, 2):
            raise ConfigError(f"model.last_stride: expected 1 or 2, got {last_stride!r}")
        block = Bottleneck if kind == "bottleneck" else BasicBlock
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        self.stage_channels: list[int] = []
        for i, (name, n) in enumerate(zip(STAGES, blocks)):
            planes, stride = 64 * 2**i, (1, 2, 2, last_stride)[i]
            stage = [block(cin, planes, stride)] + [block(planes * block.expansion, planes) for _ in range(n - 1)]
            self.add_module(name, nn.Sequential(*stage))
            cin = planes * block.expansion
            self.stage_channels.append(cin)
        self.out_channels = cin
        self.fc = nn.Linear(cin, 1000) if with_fc else None
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, which the reference keeps when it starts without ImageNet weights.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x: Tensor) -> Tensor:
        """conv1 -> bn1 -> relu -> maxpool: the layers before the first stage."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: Tensor) -> Tensor:
        """Feature map of layer4, or ImageNet logits when the model has its `fc` head."""
        x = self.stem(x)
        for name in STAGES:
            x = getattr(self, name)(x)
        if self.fc is None:
            return x
        return self.fc(x.mean(dim=(2, 3)))


def resnet_layout(depth: int) -> tuple[str, tuple[int, int, int, int]]:
    """Block type and blocks per stage of a supported depth; ConfigError otherwise."""
    if depth not in RESNET_LAYOUTS:
        raise ConfigError(f"model.depth: expected one of {sorted(RESNET_LAYOUTS)}, got {depth!r}")
    return RESNET_LAYOUTS[depth]


def build_resnet(depth: int, last_stride: int = 2, with_fc: bool = True) -> ResNet:
    """A ResNet-`depth` with torchvision's key names and shapes (`fc.*` only when `with_fc`)."""
    return ResNet(depth, last_stride=last_stride, with_fc=with_fc)
