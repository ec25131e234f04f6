"""Neuron inspection of any network: what each unit of a layer responds to, mined from a whole dataset.

- ``layers``: every module of a model by dotted name, with its output shape and receptive field;
  ``default_layer``: the last convolution whose map is at least 3x3.
- ``record``: a context manager that records layer outputs and always removes its hooks; with
  ``stop=True`` and ``forward_to`` a forward pass ends at the recorded layers.
- ``mine_topk``: one batched pass keeps, for every channel, the images (and positions) that
  excite it most; a running top-k, never a dump of all activations (``mine`` also returns every
  image's peak per channel, computed on the way).
- ``receptive_field``: the input window under any unit, exact for any topology (``fercore.tracing``).
- ``patches``: the face under a unit's receptive field.

Every function takes the model and, for a model fercore did not build, a ``preprocess`` function
from uint8 faces (B, 1, S, S) to the model's input (``fercore.inference.model_inputs``).
Projections to pixel space are in ``fercore.projections``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fercore import tracing
from fercore.data.faceset import FaceSet
from fercore.inference import DEFAULT_BATCH, batches, evaluating, model_inputs
from fercore.progress import tqdm

MIN_MAP = 3  # the default layer's map is at least this many positions on a side


class _Recorded(Exception):
    """Raised by ``record(..., stop=True)`` once every layer asked for has its output: ends the forward pass."""


@contextlib.contextmanager
def record(model: nn.Module, layers: list[str], stop: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of named layers during forward passes inside the block.

    Yields a dict that maps each layer name to its latest output (detached). The hooks are
    removed when the block ends, also on an exception, so a notebook cell run twice never
    stacks hooks. With ``stop``, run forward passes with ``forward_to`` instead of ``model(x)``: the
    pass ends once every layer is recorded (what comes after them is not computed).
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
                if stop and len(outputs) == len(layers):
                    raise _Recorded
            handles.append(modules[name].register_forward_hook(hook))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def forward_to(model: nn.Module, inputs: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
    """One forward pass inside ``record(model, layers, stop=True)`` as ``outputs``: it fills ``outputs`` afresh
    and stops after the last recorded layer (an early layer's maps cost a fraction of the whole network)."""
    outputs.clear()
    try:
        model(inputs)
    except _Recorded:
        pass


def layer_names(model: nn.Module, kind: type[nn.Module] | None = nn.Conv2d) -> list[str]:
    """Dotted names of the model's leaf modules of type ``kind`` (all leaves if None), in definition order."""
    return [name for name, module in model.named_modules()
            if name and not list(module.children()) and (kind is None or isinstance(module, kind))]


def layers(model: nn.Module, preprocess: Callable | None = None, face_size: int = 96) -> pd.DataFrame:
    """Every module of the model in the order its forward pass finished them: name (dotted path), kind,
    shape (output for one face), and the receptive field of a position of its map (rf_size, rf_stride,
    rf_start: input pixels of the model's input; NaN where a position sees the whole input or the map is
    not spatial)."""
    traces, _ = tracing.trace(model, _probe_input(model, preprocess, face_size))
    rows = []
    for t in traces.values():
        if not t.name:
            continue
        field = _field(t.window) if isinstance(t.window, tuple) else None
        rows.append({"name": t.name, "kind": t.kind, "shape": t.shape,
                     "rf_size": field.size if field else np.nan, "rf_stride": field.stride if field else np.nan,
                     "rf_start": field.start if field else np.nan})
    return pd.DataFrame(rows)


def default_layer(model: nn.Module, preprocess: Callable | None = None, face_size: int = 96) -> str:
    """The last convolution (in forward order) whose output map is at least ``MIN_MAP`` x ``MIN_MAP``."""
    table = layers(model, preprocess, face_size)
    spatial = table[(table["kind"] == "Conv2d") & table["shape"].map(lambda s: len(s) == 4 and min(s[-2:]) >= MIN_MAP)]
    if spatial.empty:
        raise ValueError(f"{type(model).__name__} has no convolution with a map of at least {MIN_MAP}x{MIN_MAP}: "
                         "pass layer= (units.layers(model) lists the modules)")
    return str(spatial["name"].iloc[-1])


def mine_topk(model: nn.Module, faceset: FaceSet, layer: str, k: int = 9, index=None, batch_size: int = DEFAULT_BATCH,
              progress: bool = True, preprocess: Callable | None = None) -> pd.DataFrame:
    """The k images that excite each filter of ``layer`` most, with the position of the peak (``mine``'s table)."""
    return mine(model, faceset, layer, k, index, batch_size, progress, preprocess)[0]


def mine(model: nn.Module, faceset: FaceSet, layer: str, k: int = 9, index=None, batch_size: int = DEFAULT_BATCH,
         progress: bool = True, preprocess: Callable | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The k images that excite each filter of ``layer`` most, with the position of the peak; and every image's
    peak per filter, which the same pass computes (the FAU scores' pooled features).

    Each image counts once per filter, at its strongest position (so the top-k are k different
    faces, as in Zeiler & Fergus's figures). Memory holds one batch and the running top-k.

    Args:
        model: a trained network (in eval mode during mining; its mode is restored after).
        faceset: the images to mine.
        layer: a module's dotted name, e.g. ``"conv3"`` or ``"layer2.0.conv1"`` (``layers`` lists them).
        k: how many images to keep per filter.
        index: which images of the faceset to mine (default: all).

    Returns:
        (DataFrame with one row per (filter, rank): filter, rank (0 = strongest), image (index
        into the faceset), y, x (position in the layer's output map), activation;
        float32 (len(index), C) each image's peak activation per filter, in ``index`` order).
    """
    index = np.arange(len(faceset)) if index is None else np.asarray(index)
    best_values, best_images, best_positions = None, None, None
    peaks = []  # (b, C) per batch
    with evaluating(model), record(model, [layer], stop=True) as outputs:
        chunks = batches(index, batch_size)
        for batch in tqdm(chunks, total=-(-len(index) // batch_size), desc=f"mining {layer}", disable=not progress):
            forward_to(model, model_inputs(faceset.images[batch], model, preprocess), outputs)
            acts = outputs[layer].float()  # (B, C, H, W)
            width = acts.shape[-1]
            values, positions = acts.flatten(2).max(dim=2)  # (B, C): each image's peak per filter
            peaks.append(values.cpu().numpy())
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
    return table.sort_values(["filter", "rank"], ignore_index=True), np.concatenate(peaks)


def layer_maps(model: nn.Module, faceset: FaceSet, layer: str, index=None, channels=None,
               batch_size: int = DEFAULT_BATCH,
               preprocess: Callable | None = None) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """``layer``'s output maps over the images at ``index``, one batch at a time (memory stays bounded).

    Yields:
        (image indices (b,), float32 maps (b, C, H, W) on the model's device), C = len(channels) if given.
    """
    index = np.arange(len(faceset)) if index is None else np.asarray(index)
    with evaluating(model), record(model, [layer], stop=True) as outputs:
        for batch in batches(index, batch_size):
            forward_to(model, model_inputs(faceset.images[batch], model, preprocess), outputs)
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


def _field(window) -> ReceptiveField:
    y, x = window
    if (y.stride, y.low, y.high) != (x.stride, x.low, x.high):
        raise ValueError(f"non-square receptive fields are not supported: {y} and {x}")
    return ReceptiveField(size=y.high - y.low + 1, stride=y.stride, start=(y.low + y.high) / 2)


def _probe_input(model: nn.Module, preprocess: Callable | None, face_size: int) -> torch.Tensor:
    """One blank face (1, 1, face_size, face_size) as the model's input."""
    return model_inputs(torch.zeros(1, 1, face_size, face_size, dtype=torch.uint8), model, preprocess)


def receptive_field(model: nn.Module, layer: str, preprocess: Callable | None = None,
                    face_size: int = 96) -> ReceptiveField:
    """Receptive field of ``layer``'s positions in the model's input pixels, for any architecture (residual and
    branching ones included): computed analytically from one traced forward pass (``fercore.tracing``).

    Raises:
        KeyError: no such layer; ValueError: a position of the layer sees the whole input (after global
            pooling or a squeeze-excitation gate), or the model resamples maps in a way fercore does not know.
    """
    traces, _ = tracing.trace(model, _probe_input(model, preprocess, face_size))
    if layer not in traces:
        raise KeyError(f"no layer {layer!r} ran in the model's forward pass; units.layers(model) lists them")
    window = traces[layer].window
    if window == tracing.GLOBAL or window is None:
        raise ValueError(f"every position of {layer!r} sees the whole input: it has no receptive field to show")
    if isinstance(window, Exception):
        raise ValueError(f"receptive field of {layer!r} unknown: {window}")
    return _field(window)


def maps_on_faces(maps: torch.Tensor, field: ReceptiveField, scale: float, size: int) -> torch.Tensor:
    """Layer maps (B, C, h, w) laid on the face crops (B, C, size, size): each crop pixel takes the bilinear
    value of the units whose receptive-field centres surround it (right for any padding and stride)."""
    h, w = maps.shape[-2:]
    pixel = (torch.arange(size, dtype=torch.float32, device=maps.device) + 0.5) / scale - 0.5  # model-input pixels
    unit = (pixel - field.start) / field.stride  # (size,) unit coordinate of each crop pixel

    def normalised(n: int) -> torch.Tensor:
        return (2 * unit / (n - 1) - 1) if n > 1 else torch.zeros_like(unit)

    gy, gx = torch.meshgrid(normalised(h), normalised(w), indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).expand(len(maps), size, size, 2)
    return torch.nn.functional.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)


def input_scale(model: nn.Module, faceset: FaceSet, preprocess: Callable | None = None) -> float:
    """Faceset pixels per model-input pixel (2 when a 48x48 model looks at 96x96 crops)."""
    return faceset.image_size / _probe_input(model, preprocess, faceset.image_size).shape[-1]


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


def verify_topk(model: nn.Module, faceset: FaceSet, top: pd.DataFrame, layer: str, filters=None,
                n_images: int = 200, batch_size: int = DEFAULT_BATCH, preprocess: Callable | None = None) -> dict:
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
    for batch, maps in layer_maps(model, faceset, layer, images, batch_size=batch_size, preprocess=preprocess):
        mine = rows[rows["image"].isin(batch)]
        where = [torch.as_tensor(mine[c].to_numpy().copy()) for c in ("filter", "y", "x")]
        slot = torch.as_tensor(np.searchsorted(batch, mine["image"].to_numpy()))
        fresh = maps[(slot, *where)].cpu().numpy()
        recomputed = max(recomputed, float(np.abs(fresh - mine["activation"].to_numpy()).max(initial=0.0)))

    subset = np.arange(min(n_images, len(faceset)))
    k = int(top["rank"].max()) + 1
    mined = mine_topk(model, faceset, layer, k=k, index=subset, batch_size=batch_size, progress=False,
                      preprocess=preprocess)
    peaks = np.concatenate([maps.flatten(2).amax(dim=2).cpu().numpy()  # (N, C)
                            for _, maps in layer_maps(model, faceset, layer, subset, batch_size=batch_size,
                                                                  preprocess=preprocess)])
    agree = [np.array_equal(np.sort(mined.loc[mined["filter"] == f, "image"].to_numpy()),
                            np.sort(np.argsort(-peaks[:, f], kind="stable")[:k])) for f in filters]
    return {"recomputed_max_abs_diff": recomputed, "brute_force_agreement": float(np.mean(agree)),
            "filters_checked": len(filters)}
