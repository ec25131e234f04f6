"""fercore.tracing: receptive fields equal a brute-force probe for any topology; ReLUs captum cannot hook are named."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fercore import tracing, units
from fercore.models import ModelConfig, build_model


def linearised(model: nn.Module) -> nn.Module:
    """A copy in which every input pixel of a unit's window reaches it with a positive weight: max pools become
    average pools of the same geometry, batch norms and ReLUs identities, every weight positive."""
    probe = copy.deepcopy(model).eval()
    for parent in probe.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
            elif isinstance(child, nn.BatchNorm2d | nn.ReLU | nn.Dropout):
                setattr(parent, name, nn.Identity())
    with torch.no_grad():
        for p in probe.parameters():
            p.copy_(p.abs() + 0.1)
    return probe


def brute_force_box(probe: nn.Module, layer: str, size: int, y: int, x: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), inclusive-exclusive: the input pixels whose gradient is non-zero for channel 0
    at (y, x) of ``layer`` in a linearised model."""
    image = torch.ones(1, 1, size, size, requires_grad=True)
    kept = {}
    handle = dict(probe.named_modules())[layer].register_forward_hook(lambda m, i, o: kept.setdefault("out", o))
    try:
        probe(image)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(kept["out"][0, 0, y, x], image)
    rows, cols = torch.nonzero(grad[0, 0], as_tuple=True)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def analytic_box(field: units.ReceptiveField, y: int, x: int, size: int) -> tuple[int, int, int, int]:
    top, left, bottom, right = field.box(y, x)
    return max(top, 0), max(left, 0), min(bottom, size), min(right, size)


@pytest.mark.parametrize("layer", ["conv1", "maxpool", "layer2.0.conv1", "layer2.0", "layer3.1.relu_out"])
def test_resnet18_receptive_fields_equal_the_brute_force_probe(layer):
    model = build_model(ModelConfig(image_size=96, width=0.25), seed=0, arch="resnet18")
    field = units.receptive_field(model, layer)
    with torch.no_grad(), units.record(model, [layer]) as out:
        model(torch.zeros(1, 1, 96, 96))
    h, probe = out[layer].shape[-1], linearised(model)
    for y, x in [(0, 0), (h // 2, h // 3), (h - 1, h - 1)]:  # corner, inside, far corner (windows clipped)
        assert analytic_box(field, y, x, 96) == brute_force_box(probe, layer, 96, y, x), (layer, y, x)


def test_mobilenet_and_the_paper_network():
    mobile = build_model(ModelConfig(image_size=48, width=0.5), arch="mobilenet_v2")
    field, probe = units.receptive_field(mobile, "features.6"), linearised(mobile)  # after an inverted-residual add
    for y, x in [(0, 0), (2, 3)]:
        assert analytic_box(field, y, x, 48) == brute_force_box(probe, "features.6", 48, y, x)
    paper = build_model(ModelConfig(image_size=48, width=0.25))
    assert units.receptive_field(paper, "conv3") == units.ReceptiveField(size=32, stride=4, start=1.5)


class Gated(nn.Module):
    """A squeeze-excitation gate: every position is scaled by a function of the whole map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.gate = nn.Linear(4, 4)
        self.resample = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        scaled = x * torch.sigmoid(self.gate(x.mean(dim=(2, 3))))[:, :, None, None]
        return self.resample(F.interpolate(scaled, scale_factor=2.0))


def test_global_and_unknown_windows_are_said():
    model = Gated()
    x = torch.zeros(1, 1, 16, 16)
    traces, _ = tracing.trace(model, x)
    assert traces["conv"].window == (tracing.Axis(1, -1, 1), tracing.Axis(1, -1, 1))
    assert traces["gate"].window == tracing.GLOBAL
    assert traces["resample"].window == tracing.GLOBAL  # the gate already made it global
    with pytest.raises(ValueError, match="sees the whole input"):
        units.receptive_field(model, "resample", preprocess=lambda faces: faces.float(), face_size=16)


def test_interpolation_is_named():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3))
    with pytest.raises(ValueError, match="interpolate maps \\(14, 14\\) positions to \\(28, 28\\)"):
        units.receptive_field(model, "2", preprocess=lambda faces: faces.float(), face_size=16)


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.shared = nn.ReLU()

    def forward(self, x):
        return self.shared(F.relu(self.shared(self.conv(x))))


def test_relus_captum_cannot_hook_are_named():
    problems = tracing.relu_problems(FunctionalRelu(), torch.zeros(1, 1, 8, 8))
    assert problems == ["a ReLU applied as a function in the model (FunctionalRelu)",
                        "ReLU module 'shared' runs 2 times per forward pass (shared)"]
    inplace = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True))
    assert tracing.relu_problems(inplace, torch.zeros(1, 1, 8, 8)) == ["ReLU module '1' is in place"]
