"""fercore.models.zero_bias: the paper's architecture, parameter count, init and variants."""

import pytest
import torch
from torch import nn

from fercore.config import VARIANTS, Variant, get_variant
from fercore.models import ModelConfig, ZeroBiasCNN, build_model, init_paper_
from fercore.units import layer_names

SMALL = ModelConfig(width=0.25, image_size=48)  # a quick model for behaviour tests


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("n_classes, expected", [(8, 1_335_508), (7, 1_335_207), (6, 1_334_906)])
def test_parameter_count_matches_paper(n_classes, expected):
    # conv 1600 + 204800 + 819200, fc4 1024*300 + 300, out 300*n + n
    assert n_params(ZeroBiasCNN(ModelConfig(n_classes=n_classes))) == expected


def test_layer_names_and_no_conv_bias():
    model = ZeroBiasCNN()
    assert layer_names(model) == ["conv1", "conv2", "conv3"]
    assert layer_names(model, None) == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "pool3",
        "dropout", "fc4", "relu4", "out",
    ]  # fmt: skip
    modules = dict(model.named_modules())
    for name in layer_names(model):
        assert modules[name].bias is None
    # Separate, non-inplace ReLU modules, so captum can hook each one.
    relus = layer_names(model, nn.ReLU)
    assert relus == ["relu1", "relu2", "relu3", "relu4"]
    assert not any(modules[name].inplace for name in relus)
    assert modules["pool3"].kernel_size == 12


@pytest.mark.parametrize("image_size", [96, 64, 48])
def test_output_shape(image_size):
    model = ZeroBiasCNN(ModelConfig(image_size=image_size, width=0.25, n_classes=7))
    assert model(torch.zeros(3, 1, image_size, image_size)).shape == (3, 7)
    # Quadrant pooling always leaves 2x2, so the parameter count does not depend on the size.
    assert model.fc4.in_features == 4 * model.conv3.out_channels


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of 8"):
        ZeroBiasCNN(ModelConfig(image_size=50))
    with pytest.raises(ValueError, match="width"):
        ModelConfig(width=0)


def test_biases_after_init():
    model = build_model(SMALL, seed=1)
    assert torch.all(model.fc4.bias == 1.0)
    assert torch.all(model.out.bias == 0.0)


def test_build_is_deterministic_in_seed():
    a, b, c = build_model(SMALL, seed=3), build_model(SMALL, seed=3), build_model(SMALL, seed=4)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert a.init_k == b.init_k != c.init_k


def test_init_std_is_common_k_over_sqrt_fan_in():
    model = build_model(ModelConfig(), seed=0)  # full width: enough weights per layer
    k = model.init_k
    assert 0.2 <= k <= 1.2
    fan_ins = {"conv1": 25, "conv2": 25 * 64, "conv3": 25 * 128, "fc4": 1024, "out": 300}
    for name, fan_in in fan_ins.items():
        weight = dict(model.named_modules())[name].weight
        k_hat = weight.std().item() * fan_in**0.5
        # conv1 has only 1600 weights: its std is known to about 2%, so allow 7%.
        assert k_hat == pytest.approx(k, rel=0.07), name
        assert weight.mean().abs().item() < 0.1 * weight.std().item()


def test_init_k_is_drawn_from_generator_in_range():
    ks = [init_paper_(ZeroBiasCNN(SMALL), torch.Generator().manual_seed(s)) for s in range(30)]
    assert all(0.2 <= k <= 1.2 for k in ks)
    assert max(ks) - min(ks) > 0.5  # actually random over the range


def test_dropout_only_in_d_variant_and_train_mode():
    x = torch.randn(4, 1, 48, 48)
    plain = build_model(SMALL, seed=0).train()
    assert isinstance(plain.dropout, nn.Identity)
    assert torch.equal(plain(x), plain(x))

    with_dropout = build_model(ModelConfig(width=0.25, image_size=48, dropout=True), seed=0)
    assert with_dropout.dropout.p == 0.5
    with_dropout.train()
    ones = torch.ones(2000)
    dropped = with_dropout.dropout(ones)
    assert set(dropped.unique().tolist()) == {0.0, 2.0}  # inverted scaling
    assert (dropped == 0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    torch.manual_seed(0)
    assert not torch.equal(with_dropout(x), with_dropout(x))
    with_dropout.eval()
    assert torch.equal(with_dropout.dropout(ones), ones)
    assert torch.equal(with_dropout(x), with_dropout(x))


def test_channels_last_and_bf16_autocast():
    model = build_model(SMALL, seed=0).eval()
    x = torch.randn(2, 1, 48, 48)
    reference = model(x)
    model_cl = model.to(memory_format=torch.channels_last)
    out = model_cl(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_bf16 = model_cl(x.to(memory_format=torch.channels_last))
    assert out_bf16.shape == (2, 8)
    assert torch.isfinite(out_bf16).all()


def test_variants():
    assert set(VARIANTS) == {"cnn", "cnn_a", "cnn_d", "cnn_ad"}
    assert get_variant("cnn") == Variant(augment=False, dropout=False)
    augment, dropout = get_variant("cnn_ad")
    assert augment and dropout
    assert get_variant("cnn_a") == (True, False)
    assert get_variant("cnn_d") == (False, True)
    with pytest.raises(ValueError, match="cnn, cnn_a, cnn_d, cnn_ad"):
        get_variant("cnn_x")
