"""Figures of neuron inspection (notebook 03): top patches, projections, positions, Grad-CAM."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from fercore import projections, units
from fercore.data.faceset import FaceSet
from fercore.fau import centres_in_faceset_pixels
from fercore.plots.data import face_grid


def _projection_window(projection: np.ndarray, field, y: int, x: int, side: int) -> np.ndarray:
    """A unit's projection cut to its receptive field and resized to the patch side."""
    top, left, bottom, _ = field.box(y, x)
    window = units.crop_window(projection, top, left, bottom - top)
    return np.asarray(Image.fromarray(window.astype(np.float32), mode="F").resize((side, side), Image.NEAREST))


def filter_topk(model, faceset: FaceSet, top: pd.DataFrame, layer: str, unit: int, k: int = 9,
                method: str | None = "deconvolution", preprocess=None, pyplot: bool = True):
    """The paper's figure for one filter: its top-k face patches, and below them the projection of
    the unit into pixel space (``method``: "deconvolution" or "guided backprop"; None: patches only).

    Black in a patch is outside the face crop: the receptive field of a unit near the border reaches past
    the image's edge (the patch is drawn with the field's full size, so every patch is to the same scale).

    Args:
        pyplot: False draws a figure that pyplot does not manage (safe on any thread, never shown by the
            inline backend: ``fercore.widgets``).
    """
    rows = top[(top["filter"] == unit) & (top["rank"] < k)]
    field = units.receptive_field(model, layer, preprocess, faceset.image_size)
    scale = units.input_scale(model, faceset, preprocess)
    patches = units.patches(faceset, rows, field, scale)
    nrows = 1 if method is None else 2
    fig = (plt.figure if pyplot else Figure)(figsize=(1.25 * k, 1.35 * nrows))
    axes = fig.subplots(nrows, k, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for c, (patch, row) in enumerate(zip(patches, rows.to_dict("records"), strict=True)):
        axes[0, c].imshow(patch, cmap="gray", vmin=0, vmax=255)
        axes[0, c].set_title(f"{row['activation']:.2f}", fontsize=7)
        if method is not None:
            projection = projections.project(model, faceset, row["image"], layer, (unit, row["y"], row["x"]), method,
                                             preprocess)
            window = _projection_window(projection, field, row["y"], row["x"], patch.shape[0])
            lim = max(1e-12, np.abs(window).max())
            axes[1, c].imshow(window, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle(f"{layer} filter {unit}: top {len(rows)} patches" + ("" if method is None else f" and {method}"),
                 fontsize=9)
    fig.tight_layout()
    return fig


def layer_overview(faceset: FaceSet, top: pd.DataFrame, field, scale: float = 1.0, ncols: int = 16):
    """One tile per filter: the face patch that excites it most."""
    first = top[top["rank"] == 0].sort_values("filter")
    patches = units.patches(faceset, first, field, scale)
    return face_grid(patches, titles=[str(f) for f in first["filter"]], ncols=ncols, size=0.8,
                     suptitle="the strongest patch of every filter (filter number above)")


def positions_on_mean_face(faceset: FaceSet, top: pd.DataFrame, field, scale: float = 1.0, filters=None):
    """Where filters fire: the mean receptive-field centre of each filter's top-k on the mean face."""
    filters = sorted(top["filter"].unique()) if filters is None else filters
    rows = top[top["filter"].isin(filters)]
    centres = pd.DataFrame(centres_in_faceset_pixels(rows, field, scale), columns=["row", "col"])
    centres["filter"] = rows["filter"].to_numpy()
    mean = centres.groupby("filter")[["row", "col"]].mean()
    spread = centres.groupby("filter")[["row", "col"]].std().fillna(0).mean(axis=1)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.imshow(faceset.images.float().mean(dim=0)[0], cmap="gray")
    points = ax.scatter(mean["col"], mean["row"], c=spread, cmap="viridis_r", s=18, edgecolor="white", linewidth=0.4)
    fig.colorbar(points, ax=ax, shrink=0.7, label="spread of the top-k centres (px)")
    ax.set_title("mean position of each filter's top activations", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def grad_cam_grid(faceset: FaceSet, images, cams: np.ndarray, predicted=None, titles=None, ncols: int = 6):
    """Faces with their Grad-CAM map overlaid.

    Args:
        predicted: the class index each map explains (``projections.grad_cam``'s target); titled "true -> predicted",
            in red where they differ. Without it, ``titles`` (or none).
    """
    if predicted is not None:
        truth = [int(faceset.labels[i]) for i in images]
        titles = [f"true {faceset.classes[t]}\nread as {faceset.classes[int(p)]}" for t, p in zip(truth, predicted,
                                                                                                  strict=True)]
        colours = ["black" if t == int(p) else "tab:red" for t, p in zip(truth, predicted, strict=True)]
    else:
        colours = ["black"] * len(images)
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.7 * ncols, 2.0 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, i) in enumerate(zip(axes.flat, images, strict=False)):
        face = faceset.images[i, 0].numpy()
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.imshow(cams[k], cmap="jet", alpha=0.4, extent=(-0.5, face.shape[1] - 0.5, face.shape[0] - 0.5, -0.5))
        if titles is not None:
            ax.set_title(titles[k], fontsize=8, color=colours[k])
    fig.tight_layout()
    return fig
