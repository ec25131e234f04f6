"""Neuron inspection: what each convolutional filter responds to, mined from a whole dataset.

- ``record``: a context manager that records layer outputs and always removes its hooks.
- ``mine_topk``: one batched pass keeps, for every filter, the images (and positions) that
  excite it most; a running top-k, never a dump of all activations.
- ``receptive_field``: the input window under any unit, computed from the model's layers.
- ``project``: a unit's deconvolution (Zeiler & Fergus) or guided backprop, through captum.
- ``grad_cam``: class saliency maps.

Activations are the outputs of the named convolution (before its ReLU); for the top units
they are positive, where the ReLU is the identity.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fercore.data.faceset import FaceSet
from fercore.inference import DEFAULT_BATCH, batches, evaluating, model_inputs
from fercore.progress import tqdm


@contextlib.contextmanager
def record(model: nn.Module, layers: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of named layers during forward passes inside the block.

    Yields a dict that maps each layer name to its latest output (detached). The hooks are
    removed when the block ends, also on an exception, so a notebook cell run twice never
    stacks hooks.
    """
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise KeyError(f"no layer {unknown} in the model; layers: {[n for n in modules if n]}")
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in layers:
            def hook(_module, _inputs, output, name=name):
                outputs[name] = output.detach()
            handles.append(modules[name].register_forward_hook(hook))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def mine_topk(model: nn.Module, faceset: FaceSet, layer: str, k: int = 9, index=None,
              batch_size: int = DEFAULT_BATCH, progress: bool = True) -> pd.DataFrame:
    """The k images that excite each filter of ``layer`` most, with the position of the peak.

    Each image counts once per filter, at its strongest position (so the top-k are k different
    faces, as in Zeiler & Fergus's figures). Memory holds one batch and the running top-k.

    Args:
        model: a trained network (in eval mode during mining; its mode is restored after).
        faceset: the images to mine.
        layer: a convolution's name, e.g. ``"conv3"``.
        k: how many images to keep per filter.
        index: which images of the faceset to mine (default: all).

    Returns:
        DataFrame with one row per (filter, rank): filter, rank (0 = strongest), image (index
        into the faceset), y, x (position in the layer's output map), activation.
    """
    index = np.arange(len(faceset)) if index is None else np.asarray(index)
    best_values, best_images, best_positions = None, None, None
    with evaluating(model), record(model, [layer]) as outputs:
        chunks = batches(index, batch_size)
        for batch in tqdm(chunks, total=-(-len(index) // batch_size), desc=f"mining {layer}", disable=not progress):
            model(model_inputs(faceset.images[batch], model))
            acts = outputs[layer].float()  # (B, C, H, W)
            width = acts.shape[-1]
            values, positions = acts.flatten(2).max(dim=2)  # (B, C): each image's peak per filter
            images = torch.as_tensor(batch, device=values.device)[:, None].expand_as(values)
            if best_values is not None:
                values = torch.cat([best_values, values])
                positions = torch.cat([best_positions, positions])
                images = torch.cat([best_images, images])
            top = values.topk(min(k, len(values)), dim=0)  # (k, C) over images
            best_values = top.values
            best_positions = positions.gather(0, top.indices)
            best_images = images.gather(0, top.indices)
    n, channels = best_values.shape
    ranks, filters = np.meshgrid(np.arange(n), np.arange(channels), indexing="ij")
    positions = best_positions.cpu().numpy()
    table = pd.DataFrame({"filter": filters.ravel(), "rank": ranks.ravel(), "image": best_images.cpu().numpy().ravel(),
                          "y": (positions // width).ravel(), "x": (positions % width).ravel(),
                          "activation": best_values.cpu().numpy().ravel()})
    return table.sort_values(["filter", "rank"], ignore_index=True)


def layer_maps(model: nn.Module, faceset: FaceSet, layer: str, index=None, channels=None,
               batch_size: int = DEFAULT_BATCH) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """``layer``'s output maps over the images at ``index``, one batch at a time (memory stays bounded).

    Yields:
        (image indices (b,), float32 maps (b, C, H, W) on the model's device), C = len(channels) if given.
    """
    index = np.arange(len(faceset)) if index is None else np.asarray(index)
    with evaluating(model), record(model, [layer]) as outputs:
        for batch in batches(index, batch_size):
            model(model_inputs(faceset.images[batch], model))
            maps = outputs[layer].float()
            yield batch, maps if channels is None else maps[:, channels]


# ---- receptive fields ----

@dataclass(frozen=True)
class ReceptiveField:
    """Input window of the units of one layer: unit (y, x) sees ``size`` x ``size`` pixels
    centred on ``(start + y * stride, start + x * stride)`` (centres can be half pixels)."""

    size: int
    stride: int
    start: float

    def centre(self, y, x) -> tuple:
        return self.start + np.asarray(y) * self.stride, self.start + np.asarray(x) * self.stride

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) input pixels, inclusive-exclusive; may leave the image."""
        cy, cx = self.centre(y, x)
        top, left = int(round(cy - (self.size - 1) / 2)), int(round(cx - (self.size - 1) / 2))
        return top, left, top + self.size, left + self.size


def receptive_field(model: nn.Module, layer: str) -> ReceptiveField:
    """Receptive field of ``layer``'s units, from the kernels, strides and paddings before it.

    Walks the model's modules in order up to ``layer`` (ReLUs and dropout leave it unchanged).
    """
    size, stride, start = 1, 1, 0.0
    for name, module in model.named_children():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = (_pair(getattr(module, attr)) for attr in ("kernel_size", "stride", "padding"))
            if isinstance(module, nn.Conv2d) and _pair(module.dilation) != 1:
                raise ValueError(f"{name}: dilated convolutions are not supported")
            size += (k - 1) * stride
            start += ((k - 1) / 2 - p) * stride
            stride *= s
        if name == layer:
            return ReceptiveField(size=size, stride=stride, start=start)
    raise KeyError(f"no layer {layer!r} among the model's children {[n for n, _ in model.named_children()]}")


def _pair(value) -> int:
    if isinstance(value, tuple):
        if value[0] != value[1]:
            raise ValueError(f"non-square kernels, strides or paddings are not supported: {value}")
        return int(value[0])
    return int(value)


def input_scale(model: nn.Module, faceset: FaceSet) -> float:
    """Faceset pixels per model-input pixel (2 when a 48x48 model looks at 96x96 crops)."""
    size = getattr(getattr(model, "config", None), "image_size", faceset.image_size)
    return faceset.image_size / size


def patches(faceset: FaceSet, top: pd.DataFrame, field: ReceptiveField, scale: float = 1.0) -> np.ndarray:
    """Face patches under the units in ``top`` (rows with image, y, x), zero-padded at the borders.

    Args:
        scale: faceset pixels per model-input pixel (``input_scale``).

    Returns:
        uint8 (len(top), P, P) with P = round(field.size * scale).
    """
    side = int(round(field.size * scale))
    images = faceset.images[:, 0].numpy()
    out = np.zeros((len(top), side, side), np.uint8)
    for row, (image, y, x) in enumerate(top[["image", "y", "x"]].to_numpy()):
        cy, cx = field.centre(y, x)
        # Centre in faceset pixels (pixel i of the model input covers faceset pixels [i*scale, (i+1)*scale)).
        t = int(round((cy + 0.5) * scale - side / 2))
        left = int(round((cx + 0.5) * scale - side / 2))
        out[row] = crop_window(images[image], t, left, side)
    return out


def crop_window(image: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """``image[top:top+side, left:left+side]``, zero-padded where the window leaves the image."""
    h, w = image.shape
    out = np.zeros((side, side), image.dtype)
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + side, h), min(left + side, w)
    if y0 < y1 and x0 < x1:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


# ---- projections to pixel space ----

METHODS = ("deconvolution", "guided backprop")


def project(model: nn.Module, faceset: FaceSet, image: int, layer: str, unit: tuple[int, int, int],
            method: str = "deconvolution") -> np.ndarray:
    """A unit's input-space projection for one face, via captum.

    Args:
        image: index into the faceset.
        layer: convolution name, e.g. ``"conv3"``.
        unit: (filter, y, x) in the layer's output map.
        method: ``"deconvolution"`` (Zeiler & Fergus: ReLU backward passes positive signals
            only) or ``"guided backprop"`` (also masked by the forward ReLU pattern).

    Returns:
        float32 (s, s) projection in the model's input resolution; zero outside the unit's
        receptive field.
    """
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    classes = {"deconvolution": NeuronDeconvolution, "guided backprop": NeuronGuidedBackprop}
    if method not in classes:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    module = dict(model.named_modules())[layer]
    x = model_inputs(faceset.images[image:image + 1], model).requires_grad_(True)
    with evaluating(model, grad=True), _expected_captum_warnings():
        attribution = classes[method](model, module).attribute(x, neuron_selector=tuple(int(u) for u in unit))
    return attribution[0, 0].detach().float().cpu().numpy()


def grad_cam(model: nn.Module, faceset: FaceSet, images, layer: str = "conv3", target=None) -> np.ndarray:
    """Grad-CAM class saliency (captum ``LayerGradCam``), upsampled to the model input.

    Args:
        images: indices into the faceset (one batch: pass a handful).
        target: class index per image (default: the model's prediction).

    Returns:
        float32 (len(images), s, s), ReLU'd and scaled to a maximum of 1 per image.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    x = model_inputs(faceset.images[np.asarray(images)], model)
    if target is None:
        with evaluating(model):
            target = model(x).argmax(dim=1)
    module = dict(model.named_modules())[layer]
    with evaluating(model, grad=True), _expected_captum_warnings():
        cam = LayerGradCam(model, module).attribute(x, target=target, relu_attributions=True)
        cam = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    cam = cam[:, 0].detach().float().cpu()
    return (cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]).numpy()


@contextlib.contextmanager
def _expected_captum_warnings() -> Iterator[None]:
    """Silence what captum always says about fercore's models (every ReLU is a module it hooks, and the input
    is a fresh tensor); any other warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations", category=UserWarning)
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients",
                                category=UserWarning)
        yield


def verify_topk(model: nn.Module, faceset: FaceSet, top: pd.DataFrame, layer: str, filters=None,
                n_images: int = 200, batch_size: int = DEFAULT_BATCH) -> dict:
    """Two checks that mining is right, for a notebook to report (both in bounded batches).

    - recomputed: a fresh forward pass on each mined image gives the mined activation at the
      mined position (largest absolute difference);
    - brute_force: mining the first ``n_images`` images again and ranking all their activations
      in full gives the same top-k (share of filters whose top-k images agree exactly).
    """
    filters = sorted(top["filter"].unique()) if filters is None else list(filters)
    rows = top[top["filter"].isin(filters)]
    images = np.unique(rows["image"].to_numpy())
    recomputed = 0.0
    for batch, maps in layer_maps(model, faceset, layer, images, batch_size=batch_size):
        mine = rows[rows["image"].isin(batch)]
        where = [torch.as_tensor(mine[c].to_numpy().copy()) for c in ("filter", "y", "x")]
        slot = torch.as_tensor(np.searchsorted(batch, mine["image"].to_numpy()))
        fresh = maps[(slot, *where)].cpu().numpy()
        recomputed = max(recomputed, float(np.abs(fresh - mine["activation"].to_numpy()).max(initial=0.0)))

    subset = np.arange(min(n_images, len(faceset)))
    k = int(top["rank"].max()) + 1
    mined = mine_topk(model, faceset, layer, k=k, index=subset, batch_size=batch_size, progress=False)
    peaks = np.concatenate([maps.flatten(2).amax(dim=2).cpu().numpy()  # (N, C)
                            for _, maps in layer_maps(model, faceset, layer, subset, batch_size=batch_size)])
    agree = [np.array_equal(np.sort(mined.loc[mined["filter"] == f, "image"].to_numpy()),
                            np.sort(np.argsort(-peaks[:, f], kind="stable")[:k])) for f in filters]
    return {"recomputed_max_abs_diff": recomputed, "brute_force_agreement": float(np.mean(agree)),
            "filters_checked": len(filters)}
