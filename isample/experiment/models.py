"""CIFAR ResNets: He et al. (2016)'s small ones for CPUs, the CIFAR ResNet-18 for GPUs and the Wide
ResNets of Zagoruyko & Komodakis (2016), the network of Katharopoulos & Fleuret (2018); and any
classification model of torchvision as `torchvision:<name>`, randomly initialised (no weights are
downloaded). This project's own models take a normalisation: batch (BatchNorm), layer (one group over
all channels and pixels of an example, as the 2018 code's LayerNormalization) or group (Wu & He's
GroupNorm, 32 groups or one per channel when fewer)."""

import math
import re
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

NORMS = ("batch", "layer", "group")
Norm = Callable[[int], nn.Module]


def norm_layer(norm: str) -> Norm:
    """channels -> the normalisation module `norm` names. `layer` normalises each example over all its
    channels and pixels; unlike BatchNorm it computes the same in training and eval mode."""
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "layer":
        return lambda channels: nn.GroupNorm(1, channels)
    if norm == "group":
        return lambda channels: nn.GroupNorm(math.gcd(32, channels), channels)
    raise ValueError(f"unknown normalisation {norm!r}: {', '.join(NORMS)}")


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions; the shortcut subsamples and zero-pads channels (He et al.'s option A)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: Norm = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = norm(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    """6n+2 layers: a 3x3 stem and three stages of n blocks with 16, 32 and 64 channels."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, norm: Norm = nn.BatchNorm2d):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), norm(16), nn.ReLU())
        layers, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(_BasicBlock(channels, width, stride, norm))
                channels = width
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def cifar_resnet18(num_classes: int = 10, norm: Norm = nn.BatchNorm2d) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: 3x3 stride-1 first convolution, no max-pool."""
    model = torchvision.models.resnet18(num_classes=num_classes, norm_layer=norm)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


class _WideBlock(nn.Module):
    """Pre-activation: norm, ReLU, 3x3 convolution, twice; a 1x1 convolution on the shortcut when the
    shape changes (Zagoruyko & Komodakis's basic block, no dropout)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: Norm):
        super().__init__()
        self.residual = nn.Sequential(
            norm(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            norm(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
        )
        reshaped = stride != 1 or in_channels != out_channels
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if reshaped else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.residual(x)


class WideResNet(nn.Module):
    """WRN-d-k: a 3x3 stem of 16 channels, three groups of (d - 4) / 6 blocks with 16k, 32k and 64k
    channels (the last two halve the resolution), then norm, ReLU, global average pooling, linear."""

    def __init__(self, depth: int, width: int, num_classes: int = 10, norm: Norm = nn.BatchNorm2d):
        super().__init__()
        blocks, channels, layers = (depth - 4) // 6, 16, []
        for group, base in enumerate((16, 32, 64)):
            for block in range(blocks):
                stride = 2 if group > 0 and block == 0 else 1
                layers.append(_WideBlock(channels, base * width, stride, norm))
                channels = base * width
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), *layers, norm(channels), nn.ReLU())
        self.head = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


MODELS = {
    "resnet8": lambda num_classes, norm: CifarResNet(1, num_classes, norm),
    "resnet20": lambda num_classes, norm: CifarResNet(3, num_classes, norm),
    "resnet32": lambda num_classes, norm: CifarResNet(5, num_classes, norm),
    "resnet56": lambda num_classes, norm: CifarResNet(9, num_classes, norm),
    "resnet18": cifar_resnet18,
}
WIDE_RESNET = re.compile(r"^wrn(\d+)_(\d+)$")  # wrn<depth>_<width>: wrn28_2, wrn28_10, wrn16_4


def wide_resnet_shape(name: str) -> tuple[int, int] | None:
    """(depth, width) of a name wrn<depth>_<k>, None for any other name; ValueError for a bad shape."""
    wide = WIDE_RESNET.match(name)
    if wide is None:
        return None
    depth, width = map(int, wide.groups())
    if depth < 10 or (depth - 4) % 6 or width < 1:
        raise ValueError(
            f"{name!r}: a Wide ResNet wrn<depth>_<k> needs depth = 6n + 4 (10, 16, 22, 28, ...) and k >= 1"
        )
    return depth, width


TORCHVISION = "torchvision:"
# Models whose training forward returns auxiliary outputs unless told not to (and which warn unless
# told how to initialise).
_TORCHVISION_KEYWORDS = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}
LIST_HINT = "python -c 'import torchvision; print(torchvision.models.list_models(module=torchvision.models))'"


def torchvision_classifiers() -> list[str]:
    """The classification models torchvision builds by name (not detection, segmentation, video...)."""
    return torchvision.models.list_models(module=torchvision.models)


def check_model_name(name: str) -> str:
    """The name itself when it is a model this project builds; ValueError saying what is, otherwise."""
    if name in MODELS or wide_resnet_shape(name):
        return name
    if name.startswith(TORCHVISION):
        if name.removeprefix(TORCHVISION) in torchvision_classifiers():
            return name
        raise ValueError(f"{name!r} is not a torchvision classification model; {LIST_HINT} lists them")
    raise ValueError(
        f"{name!r} is not a model here: {', '.join(MODELS)}, wrn<depth>_<k> (wrn28_2, wrn28_10), "
        f"or torchvision:<name> ({LIST_HINT})"
    )


def check_norm(name: str, norm: str) -> str:
    """`norm` when `name` can be built with it: any of NORMS for this project's models, batch for torchvision's."""
    norm_layer(norm)
    if name.startswith(TORCHVISION) and norm != "batch":
        raise ValueError(
            f"model.norm = {norm!r}: torchvision models keep their own normalisation, so {name!r} takes batch only"
        )
    return norm


def build_model(name: str, num_classes: int, norm: str = "batch") -> nn.Module:
    check_model_name(name)
    check_norm(name, norm)
    if name.startswith(TORCHVISION):
        name = name.removeprefix(TORCHVISION)
        return torchvision.models.get_model(
            name, weights=None, num_classes=num_classes, **_TORCHVISION_KEYWORDS.get(name, {})
        )
    wide = wide_resnet_shape(name)
    if wide:
        return WideResNet(*wide, num_classes, norm_layer(norm))
    return MODELS[name](num_classes, norm_layer(norm))
