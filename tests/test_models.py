"""fercore.models: the registry builds every arch deterministically, leaves the caller's RNG alone, and makes
random controls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fercore.models import ARCHS, ModelConfig, archs_table, build_model, get_arch, n_parameters, reinitialised


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_arch_builds_deterministically(arch):
    settings = get_arch(arch).settings["quick"]
    config = ModelConfig(n_classes=8, image_size=settings.image_size, width=settings.width)
    before = torch.get_rng_state()
    a, b, c = (build_model(config, seed=s, arch=arch) for s in (3, 3, 4))
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(t, b.state_dict()[k]) for k, t in a.state_dict().items())
    assert any(not torch.equal(t, c.state_dict()[k]) for k, t in a.state_dict().items() if t.is_floating_point())
    assert (a.arch, a.config, a.preprocess.image_size) == (arch, config, settings.image_size)
    assert a(torch.zeros(2, 1, settings.image_size, settings.image_size)).shape == (2, 8)


def test_registry_table_and_errors():
    table = archs_table().set_index("arch")
    assert table.loc["zero_bias_cnn", "parameters_paper"] == 1_335_508  # the paper's network, exactly
    assert set(table.index) == set(ARCHS) and (table["parameters_quick"] < table["parameters_paper"]).all()
    with pytest.raises(ValueError, match="registered archs: zero_bias_cnn, resnet18, mobilenet_v2"):
        get_arch("vgg99")


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def test_random_controls():
    model = build_model(ModelConfig(image_size=48, width=0.25), seed=0, arch="resnet18")
    control = reinitialised(model, seed=5)
    assert control.arch == "resnet18" and not control.training
    assert not torch.equal(control.conv1.weight, model.conv1.weight)
    assert n_parameters(control) == n_parameters(model)
    mine = Nested()
    for p in mine.parameters():
        nn.init.constant_(p, 0.5)
    other = reinitialised(mine, seed=1)
    assert not torch.equal(other.body[0].weight, mine.body[0].weight) and torch.all(mine.body[0].weight == 0.5)
    with pytest.raises(ValueError, match="Bare has no module with reset_parameters"):
        reinitialised(Bare(), seed=1)


class Bare(nn.Module):
    """Weights held directly, no layer that knows how to re-initialise them."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x * self.weight.sum()
