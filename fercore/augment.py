"""The paper's input scaling and data augmentation, as batched tensor ops on any device.

Pixel scale convention: everything in this module works on *unit pixels*, floats in [0, 1]
(uint8 images are divided by 255 on the way in). The pipeline of one batch is

    images uint8 (B, 1, S, S) -> float [0, 1] -> augment (training batches of `a` variants)
        -> normalize (x2 -> [0, 2], minus the 5x5 local mean) -> model

and ``prepare_batch`` does all of it. The authors' code scaled to [0, 2] first, augmented,
min-max rescaled each image to [0, 1] and multiplied by 2 again; the warp is linear and the
intensity transform is followed by a min-max, so augmenting on [0, 1] and doubling once in
``normalize`` gives the same numbers, and the network sees the same [0, 2] scale for
augmented training batches and for evaluation batches.

Facts checked in the authors' code (ifp-uiuc/anna, ``util.DataAugmenter2`` and
``util.gray_augment_image``):
- the intensity exponent is ``numpy.random.uniform(0.25, 4)``: uniform in value, not
  log-uniform, so most draws darken (mean exponent 2.1); fercore follows that;
- the window shift is ``rand * d - d / 2`` with ``d = W - s * W``: for s > 1 (d < 0) that is the
  same symmetric range U(-|d|/2, |d|/2), which keeps the whole face inside the zoomed-out view;
- after the per-image min-max the gain b and offset c cancel exactly (b > 0), so only the
  exponent changes the image; they are still sampled and applied, as the paper describes;
- rotation and scale are about the image centre; anna (skimage) used pixel (W/2, H/2), half a
  pixel off the true centre (W-1)/2, which fercore does not copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LOCAL_MEAN_SIZE = 5  # the local mean is a 5x5 box
_EPS = 1e-12  # guards the min-max rescale of a constant image


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 unit pixels in [0, 1]; float images are returned as float32.

    Args:
        images: (B, C, H, W) uint8 in [0, 255], or float already in [0, 1].

    Returns:
        float32 tensor of the same shape in [0, 1].
    """
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.float()


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 faces (B, 1, S, S) -> uint8 (B, 1, size, size), area interpolation rounded back to uint8.

    The one way fercore shrinks faces for a smaller model, so training, evaluation and neuron
    inspection all feed the network the same pixels.
    """
    if images.shape[-1] == size:
        return images
    return F.interpolate(images.float(), size=(size, size), mode="area").round_().to(torch.uint8)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """The paper's input scaling: pixels to [0, 2], then subtract the 5x5 local mean.

    The local mean is a 5x5 box filter with zero padding that always divides by 25, so
    pixels within two of the border see a smaller mean (as in the authors' code). Their code
    meant to divide by the local standard deviation too, but that is a no-op in Python 2
    (``std ** (1 / 2)`` is ``std ** 0``), so the network was trained on mean-removed inputs.
    Used identically for training, validation and test batches.

    Args:
        images: (B, 1, H, W) uint8 in [0, 255], or float unit pixels in [0, 1].

    Returns:
        float32 (B, 1, H, W), the network's input.
    """
    x = to_unit(images) * 2.0  # (B, 1, H, W) in [0, 2]
    return x - _box_mean(x)  # (B, 1, H, W)


def _box_mean(x: torch.Tensor) -> torch.Tensor:
    """The 5x5 local mean with zero padding, always divided by 25 (avg_pool2d with count_include_pad, to float
    rounding): a sum of five shifted copies along each axis, 4x faster on a CPU than avg_pool2d (0.15 vs 0.65 ms
    on a batch of 32 48x48 faces), which took 8% of a quick training step."""
    h, w, r = x.shape[-2], x.shape[-1], _LOCAL_MEAN_SIZE // 2
    padded = F.pad(x, (r, r, r, r))  # (B, 1, H + 4, W + 4)
    rows = sum(padded[..., j:j + w] for j in range(_LOCAL_MEAN_SIZE))  # (B, 1, H + 4, W)
    return sum(rows[..., i:i + h, :] for i in range(_LOCAL_MEAN_SIZE)) / _LOCAL_MEAN_SIZE**2


@dataclass
class AugmentConfig:
    """Ranges of the paper's random augmentation; a range (v, v) switches that part off."""

    max_rotation_deg: float = 5.0  # rotation ~ U(-5, 5) degrees about the centre
    scale_range: tuple[float, float] = (0.7, 1.4)  # s: the output shows an s*W-wide window
    flip_prob: float = 0.5  # horizontal flip probability
    translate: bool = True  # shift the window by U(-|d|/2, |d|/2) per axis, d = W - s*W
    gamma_range: tuple[float, float] = (0.25, 4.0)  # a in I**a * b + c, uniform as in anna
    gain_range: tuple[float, float] = (0.7, 1.4)  # b
    offset_range: tuple[float, float] = (-0.1, 0.1)  # c


@dataclass
class AugmentParams:
    """One draw of augmentation parameters; every field is a (B,) tensor on the data's device."""

    angle_deg: torch.Tensor  # rotation of the sampling window, degrees
    scale: torch.Tensor  # s; > 1 zooms out (zero-filled borders), < 1 zooms in
    flip: torch.Tensor  # bool: mirror the input left-right before the warp
    shift_x: torch.Tensor  # window shift, fraction of the width (+ = window right, content left)
    shift_y: torch.Tensor  # window shift, fraction of the height (+ = window down, content up)
    gamma: torch.Tensor  # a
    gain: torch.Tensor  # b
    offset: torch.Tensor  # c

    @classmethod
    def neutral(cls, batch_size: int, device: torch.device | str = "cpu") -> AugmentParams:
        """Parameters that change nothing (up to interpolation error): a base for tests."""
        zeros = torch.zeros(batch_size, device=device)
        ones = torch.ones(batch_size, device=device)
        return cls(zeros, ones, zeros.bool(), zeros, zeros, ones, ones, zeros)

    def __len__(self) -> int:
        return len(self.scale)


def _uniform(u: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Map U(0, 1) samples to U(low, high)."""
    return low + (high - low) * u


def sample_params(batch_size: int, generator: torch.Generator, config: AugmentConfig) -> AugmentParams:
    """Draw one set of augmentation parameters per image, on ``generator``'s device.

    Args:
        batch_size: B, the number of images.
        generator: the run's augmentation generator; it must live on the data's device
            (``torch.Generator(device=...)``), and it alone decides the draw.
        config: the sampling ranges.

    Returns:
        AugmentParams of (B,) tensors.
    """
    u = torch.rand(8, batch_size, generator=generator, device=generator.device)  # (8, B)
    scale = _uniform(u[1], *config.scale_range)
    # The window may move by half the size difference between image and window, in either
    # direction: d = 1 - s in fractions of the width (negative when s > 1, same range).
    half_slack = (1.0 - scale).abs() / 2 if config.translate else torch.zeros_like(scale)
    return AugmentParams(
        angle_deg=_uniform(u[0], -config.max_rotation_deg, config.max_rotation_deg),
        scale=scale,
        flip=u[2] < config.flip_prob,
        shift_x=_uniform(u[3], -1.0, 1.0) * half_slack,
        shift_y=_uniform(u[4], -1.0, 1.0) * half_slack,
        gamma=_uniform(u[5], *config.gamma_range),
        gain=_uniform(u[6], *config.gain_range),
        offset=_uniform(u[7], *config.offset_range),
    )


def _affine_theta(params: AugmentParams) -> torch.Tensor:
    """The (B, 2, 3) matrices mapping output to input coordinates, in affine_grid's units.

    affine_grid's coordinates run from -1 to 1 across the image, so an output point p is
    read from input point s * R(angle) p + 2 * shift (the window is s times the image wide,
    rotated and shifted); a flip negates the input x, i.e. mirrors the input first.
    """
    angle = torch.deg2rad(params.angle_deg)
    cos, sin = torch.cos(angle) * params.scale, torch.sin(angle) * params.scale
    row_x = torch.stack([cos, -sin, 2 * params.shift_x], dim=1)  # (B, 3)
    row_y = torch.stack([sin, cos, 2 * params.shift_y], dim=1)  # (B, 3)
    mirror = 1.0 - 2.0 * params.flip.to(row_x.dtype)  # (B,): -1 where flipped
    return torch.stack([row_x * mirror[:, None], row_y], dim=1)  # (B, 2, 3)


def apply(images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Apply given augmentation parameters: one warp for the batch, then the intensity change.

    Geometry: flip, rotation, scale and shift in one ``affine_grid`` + ``grid_sample``
    (bilinear, zero padding, align_corners=False). Intensity: ``I ** a * b + c``, then each
    image is min-max rescaled to [0, 1] (a constant image becomes all zeros).

    Args:
        images: float (B, C, H, W) unit pixels in [0, 1], square (H == W).
        params: one draw from ``sample_params`` (or ``AugmentParams.neutral``), length B.

    Returns:
        float (B, C, H, W) in [0, 1], on the input's device.
    """
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"augmentation expects square images, got {tuple(images.shape[-2:])}")
    if len(params) != len(images):
        raise ValueError(f"{len(params)} parameter sets for a batch of {len(images)} images")
    x = images.float()
    theta = _affine_theta(params).to(x.dtype)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Bilinear weights are convex, but clamp anyway: a tiny negative ** fractional is NaN.
    x = x.clamp_min(0.0) ** params.gamma[:, None, None, None] * params.gain[:, None, None, None]
    x = x + params.offset[:, None, None, None]  # (B, C, H, W)
    low = x.amin(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - low) / (high - low).clamp_min(_EPS)


def augment(images: torch.Tensor, generator: torch.Generator, config: AugmentConfig) -> torch.Tensor:
    """Sample parameters with ``generator`` and apply them: ``apply(images, sample_params(...))``.

    Args:
        images: float (B, C, H, W) unit pixels in [0, 1], square.
        generator: lives on ``images.device``.
        config: the sampling ranges.

    Returns:
        float (B, C, H, W) in [0, 1]; feed it to ``normalize`` next.
    """
    return apply(images, sample_params(len(images), generator, config))


def prepare_batch(
    images: torch.Tensor,
    config: AugmentConfig | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 batch -> network input: unit pixels, augmentation if ``config`` is given, normalize.

    Pass a config (and the generator) for training batches of the `a` variants; pass neither
    for evaluation and for variants without augmentation.

    Args:
        images: (B, 1, S, S) uint8 (or float unit pixels), on the training device.
        config: augmentation ranges, or None for no augmentation.
        generator: required with a config; on ``images.device``.

    Returns:
        float32 (B, 1, S, S) ready for the model.
    """
    x = to_unit(images)  # (B, 1, S, S) in [0, 1]
    if config is not None:
        if generator is None:
            raise ValueError("augmentation needs a generator (torch.Generator(device=images.device))")
        x = augment(x, generator, config)
    return normalize(x)
