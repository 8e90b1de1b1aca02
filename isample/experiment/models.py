"""CIFAR ResNets: He et al. (2016)'s small ones for CPUs and the CIFAR ResNet-18 for GPUs."""

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


def build_model(name: str, num_classes: int) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](num_classes)
