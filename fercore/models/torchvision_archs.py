"""torchvision families adapted to 1-channel face crops, built from scratch (no weights are downloaded).

The adaptations, and why:
- one input channel (the faces are gray), the first convolution otherwise as torchvision's;
- a width multiplier (``ModelConfig.width``) so a quick profile can train them on a CPU;
- every ReLU is its own, non-inplace ``nn.ReLU`` module, called once per forward: captum's
  deconvolution and guided backprop hook ReLU modules, and a shared or in-place ReLU breaks that
  (ResNet's blocks share one in-place ReLU; MobileNetV2 uses in-place ReLU6, replaced by ReLU);
- the `d` variants put dropout p=0.5 before the classifier, the others none (as the paper's network).
Module names stay torchvision's (``layer2.0.conv1``, ``features.3.conv.1``).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import mobilenetv2, resnet

from fercore.models.base import ModelConfig


class _BasicBlock(resnet.BasicBlock):
    """torchvision's BasicBlock with two ReLU modules (``relu``, ``relu_out``), none in place."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()
        self.relu_out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu_out(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (torchvision's layout: stem, four stages of two basic blocks, average pool, fc) on 1 channel.

    Shapes at 96x96, width 1: (B, 1, 96, 96) -> conv1 (B, 64, 48, 48) -> maxpool (B, 64, 24, 24) -> layer1
    (B, 64, 24, 24) -> layer2 (B, 128, 12, 12) -> layer3 (B, 256, 6, 6) -> layer4 (B, 512, 3, 3) -> fc.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        widths = [max(8, round(c * config.width)) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(1, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages, channels = [], widths[0]
        for k, width in enumerate(widths):
            stride = 1 if k == 0 else 2
            down = None
            if stride != 1 or channels != width:
                down = nn.Sequential(resnet.conv1x1(channels, width, stride), nn.BatchNorm2d(width))
            stages.append(nn.Sequential(_BasicBlock(channels, width, stride, down), _BasicBlock(width, width)))
            channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.5) if config.dropout else nn.Identity()
        self.fc = nn.Linear(channels, config.n_classes)
        for module in self.modules():  # torchvision's init
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: normalised faces (B, 1, S, S). Returns: logits (B, n_classes)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


def build_resnet18(config: ModelConfig, seed: int = 0) -> ResNet18:
    with torch.random.fork_rng(devices=[]):  # torchvision's init draws from the global RNG: seed it, leave it alone
        torch.manual_seed(seed)
        return ResNet18(config)


def build_mobilenet_v2(config: ModelConfig, seed: int = 0) -> nn.Module:
    """torchvision's MobileNetV2 (inverted residuals, linear bottlenecks) on 1 channel, ReLU6 -> ReLU.

    Shapes at 96x96, width 1: (B, 1, 96, 96) -> features.0 (B, 32, 48, 48) -> ... features.18 (B, 1280, 3, 3)
    -> classifier.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = mobilenetv2.MobileNetV2(num_classes=config.n_classes, width_mult=config.width,
                                        dropout=0.5 if config.dropout else 0.0)
        stem = model.features[0][0]
        model.features[0][0] = nn.Conv2d(1, stem.out_channels, stem.kernel_size, stem.stride, stem.padding,
                                         bias=False)
        nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU6 | nn.ReLU):
                setattr(parent, name, nn.ReLU())
    if not config.dropout:
        model.classifier[0] = nn.Identity()
    model.config = config
    return model


__all__ = ["ResNet18", "build_mobilenet_v2", "build_resnet18"]
