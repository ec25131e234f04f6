"""Tests for fercore.augment: input scaling, parameter statistics and the warp itself."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from fercore.augment import (
    AugmentConfig,
    AugmentParams,
    apply,
    augment,
    normalize,
    prepare_batch,
    sample_params,
    to_unit,
)


def spanning_image(size: int = 32, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Random unit-pixel images whose min is exactly 0 and max exactly 1 (min-max is identity)."""
    x = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(seed))
    x[:, :, 0, 0], x[:, :, -1, -1] = 0.0, 1.0
    return x


# ---- normalize -------------------------------------------------------------------------


def test_normalize_hand_values_on_constant_image():
    out = normalize(torch.full((1, 1, 7, 7), 255, dtype=torch.uint8))[0, 0]
    # [0, 2] scaling, minus a zero-padded 5x5 box mean that always divides by 25.
    assert torch.allclose(out[2:5, 2:5], torch.zeros(3, 3), atol=1e-6)  # full 5x5 window
    assert out[0, 0].item() == pytest.approx(2 - 2 * 9 / 25)  # corner: 3x3 of the window inside
    assert out[0, 3].item() == pytest.approx(2 - 2 * 15 / 25)  # edge: 3x5 inside
    assert out[1, 1].item() == pytest.approx(2 - 2 * 16 / 25)  # one in: 4x4 inside


def test_normalize_uint8_and_unit_float_agree_and_match_conv():
    images = torch.randint(0, 256, (3, 1, 16, 16), dtype=torch.uint8)
    out = normalize(images)
    torch.testing.assert_close(out, normalize(images.float() / 255))
    x = images.float() / 255 * 2
    box = F.conv2d(x, torch.full((1, 1, 5, 5), 1 / 25), padding=2)
    torch.testing.assert_close(out, x - box)
    assert out.dtype == torch.float32


def test_to_unit():
    assert to_unit(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]


# ---- sample_params ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_params() -> AugmentParams:
    return sample_params(4096, torch.Generator().manual_seed(0), AugmentConfig())


def test_rotation_uniform_within_limits(many_params):
    angle = many_params.angle_deg
    assert angle.abs().max() <= 5.0
    assert angle.min() < -4.9 and angle.max() > 4.9
    assert abs(angle.mean().item()) < 0.2  # sd of the mean is about 0.045
    assert angle.std().item() == pytest.approx(5 / 3**0.5, rel=0.05)  # uniform, not normal


def test_scale_and_flip(many_params):
    scale = many_params.scale
    assert scale.min() >= 0.7 and scale.max() <= 1.4
    assert scale.mean().item() == pytest.approx(1.05, abs=0.02)
    assert many_params.flip.dtype == torch.bool
    assert abs(many_params.flip.sum().item() - 2048) < 4 * 32  # binomial sd = 32


def test_translation_bounded_by_scale_slack(many_params):
    slack = (1 - many_params.scale).abs() / 2
    for shift in (many_params.shift_x, many_params.shift_y):
        assert torch.all(shift.abs() <= slack + 1e-7)
        assert (shift.abs() / slack).max() > 0.99  # the bound is reached
        assert abs(shift.mean().item()) < 0.01


def test_intensity_ranges(many_params):
    p = many_params
    assert p.gamma.min() >= 0.25 and p.gamma.max() <= 4.0
    assert p.gamma.mean().item() == pytest.approx(2.125, abs=0.08)  # uniform in value, as in anna
    assert p.gain.min() >= 0.7 and p.gain.max() <= 1.4
    assert p.offset.min() >= -0.1 and p.offset.max() <= 0.1


def test_no_translation_option():
    params = sample_params(64, torch.Generator().manual_seed(0), AugmentConfig(translate=False))
    assert torch.all(params.shift_x == 0) and torch.all(params.shift_y == 0)


# ---- apply -----------------------------------------------------------------------------


def test_neutral_params_are_identity():
    x = spanning_image()
    torch.testing.assert_close(apply(x, AugmentParams.neutral(2)), x, atol=1e-5, rtol=0)


def test_flip_only_mirrors_input():
    x = spanning_image()
    params = AugmentParams.neutral(2)
    params.flip = torch.tensor([True, False])
    out = apply(x, params)
    torch.testing.assert_close(out[0], torch.flip(x[0], dims=[-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1], atol=1e-5, rtol=0)


def test_scale_two_halves_a_centred_square():
    x = torch.zeros(1, 1, 64, 64)
    x[..., 16:48, 16:48] = 1.0  # 32 pixels wide
    params = AugmentParams.neutral(1)
    params.scale = torch.tensor([2.0])  # the output shows a window twice the image width
    out = apply(x, params)[0, 0]
    bright = out > 0.5
    assert bright[32].sum().item() == 16 and bright[:, 32].sum().item() == 16
    assert bright[24:40, 24:40].all() and bright.sum().item() == 16 * 16


def test_shift_moves_window_right_and_down():
    x = spanning_image(size=32, batch=1)
    params = AugmentParams.neutral(1)
    params.shift_x, params.shift_y = torch.tensor([0.25]), torch.tensor([0.125])  # 8 and 4 px
    out = apply(x, params)[0, 0]
    # The window moves right/down, so the content moves left/up by whole pixels.
    torch.testing.assert_close(out[:-4, :-8], x[0, 0, 4:, 8:], atol=1e-5, rtol=0)
    assert torch.all(out[-4:] == 0) and torch.all(out[:, -8:] == 0)


def test_rotation_direction_convention():
    x = spanning_image(size=16, batch=1)
    params = AugmentParams.neutral(1)
    params.angle_deg = torch.tensor([90.0])
    torch.testing.assert_close(apply(x, params), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_intensity_gain_and_offset_cancel_in_min_max():
    x = spanning_image()
    params = AugmentParams.neutral(2)
    params.gamma = torch.tensor([2.0, 0.5])
    params.gain, params.offset = torch.tensor([1.3, 0.7]), torch.tensor([0.05, -0.1])
    out = apply(x, params)
    torch.testing.assert_close(out[0], x[0] ** 2, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1] ** 0.5, atol=1e-5, rtol=0)


def test_constant_image_gives_zeros_not_nan():
    out = apply(torch.full((2, 1, 8, 8), 0.5), AugmentParams.neutral(2))
    assert torch.all(out == 0)


def test_parameter_count_must_match_batch():
    with pytest.raises(ValueError, match="parameter sets"):
        apply(torch.zeros(3, 1, 8, 8), AugmentParams.neutral(2))


# ---- augment and prepare_batch ---------------------------------------------------------


def test_augment_range_and_determinism():
    x = torch.rand(16, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    config = AugmentConfig()
    out_a = augment(x, torch.Generator().manual_seed(7), config)
    out_b = augment(x, torch.Generator().manual_seed(7), config)
    out_c = augment(x, torch.Generator().manual_seed(8), config)
    assert out_a.shape == x.shape and torch.isfinite(out_a).all()
    assert out_a.min() >= 0 and out_a.max() <= 1
    assert torch.equal(out_a, out_b)
    assert not torch.allclose(out_a, out_c)


def test_prepare_batch_eval_and_train():
    images = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(prepare_batch(images), normalize(images))
    train = prepare_batch(images, AugmentConfig(), torch.Generator().manual_seed(0))
    assert train.shape == images.shape and train.dtype == torch.float32
    assert torch.isfinite(train).all()
    # Augmented and plain batches reach the network on the same [0, 2]-minus-mean scale.
    assert train.abs().max() <= 2.0 + 1e-5
    with pytest.raises(ValueError, match="generator"):
        prepare_batch(images, AugmentConfig())


def test_neutral_config_through_prepare_batch_matches_eval():
    images = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8)
    images[:, :, 0, 0], images[:, :, -1, -1] = 0, 255  # min-max is then the identity
    still = replace(
        AugmentConfig(),
        max_rotation_deg=0.0,
        scale_range=(1.0, 1.0),
        flip_prob=0.0,
        gamma_range=(1.0, 1.0),
        gain_range=(1.0, 1.0),
        offset_range=(0.0, 0.0),
    )
    out = prepare_batch(images, still, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, prepare_batch(images), atol=1e-4, rtol=0)
