"""fercore.models.torchvision_archs: 1-channel ResNet-18 and MobileNetV2 whose ReLUs captum can hook."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fercore import tracing
from fercore.models import ModelConfig, build_model


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("size", [48, 96])
def test_one_channel_faces_to_logits(arch, size):
    model = build_model(ModelConfig(n_classes=6, image_size=size, width=0.25), seed=0, arch=arch).eval()
    x = torch.randn(2, 1, size, size)
    assert model(x).shape == (2, 6)
    assert tracing.relu_problems(model, x[:1]) == []  # every ReLU its own module, once per pass, not in place
    assert not any(isinstance(m, nn.ReLU6) for m in model.modules())


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_dropout_only_in_d_variants(arch):
    def dropouts(model):
        return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]

    assert dropouts(build_model(ModelConfig(width=0.25, dropout=True), arch=arch)) == [0.5]
    assert dropouts(build_model(ModelConfig(width=0.25, dropout=False), arch=arch)) == []


def test_resnet_width_and_torchvision_names():
    model = build_model(ModelConfig(width=0.5), arch="resnet18")
    names = dict(model.named_modules())
    assert {"conv1", "layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.relu_out", "fc"} <= set(names)
    assert [names[f"layer{k}.0.conv1"].out_channels for k in (1, 2, 3, 4)] == [32, 64, 128, 256]
