"""CIFAR ResNets: He et al. (2016)'s small ones for CPUs and the CIFAR ResNet-18 for GPUs; and any
classification model of torchvision as `torchvision:<name>`, randomly initialised (no weights are
downloaded)."""

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions; the shortcut subsamples and zero-pads channels (He et al.'s option A)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
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

    def __init__(self, blocks_per_stage: int, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(_BasicBlock(channels, width, stride))
                channels = width
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def cifar_resnet18(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: 3x3 stride-1 first convolution, no max-pool."""
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


MODELS = {
    "resnet8": lambda num_classes: CifarResNet(1, num_classes),
    "resnet20": lambda num_classes: CifarResNet(3, num_classes),
    "resnet32": lambda num_classes: CifarResNet(5, num_classes),
    "resnet56": lambda num_classes: CifarResNet(9, num_classes),
    "resnet18": cifar_resnet18,
}


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
    if name in MODELS:
        return name
    if name.startswith(TORCHVISION):
        if name.removeprefix(TORCHVISION) in torchvision_classifiers():
            return name
        raise ValueError(f"{name!r} is not a torchvision classification model; {LIST_HINT} lists them")
    raise ValueError(f"{name!r} is not a model here: {', '.join(MODELS)}, or torchvision:<name> ({LIST_HINT})")


def build_model(name: str, num_classes: int) -> nn.Module:
    check_model_name(name)
    if name.startswith(TORCHVISION):
        name = name.removeprefix(TORCHVISION)
        return torchvision.models.get_model(
            name, weights=None, num_classes=num_classes, **_TORCHVISION_KEYWORDS.get(name, {})
        )
    return MODELS[name](num_classes)
