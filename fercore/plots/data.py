"""Figures of the data (notebook 00): faces, expressions, action units, class balance."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fercore.data.faceset import FaceSet
from fercore.facs import au_label


def face_grid(images, titles=None, ncols: int = 8, size: float = 1.4, cmap: str = "gray", vmin=0, vmax=255,
              suptitle: str | None = None):
    """Show images (N, H, W) or (N, 1, H, W) in a grid with optional titles."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.25)), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(titles[k], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def expression_grid(faceset: FaceSet, n_examples: int = 6, seed: int = 0):
    """Rows: the classes; columns: examples from different subjects (last frames; neutral: first frames)."""
    labels = faceset.labels.numpy()
    last = (faceset.meta["role"].to_numpy() != "onset") & (labels >= 0)
    rng = np.random.default_rng(seed)
    nrows = len(faceset.classes)
    fig, axes = plt.subplots(nrows, n_examples, figsize=(1.3 * n_examples, 1.4 * nrows), squeeze=False)
    for r, name in enumerate(faceset.classes):
        candidates = np.flatnonzero(last & (labels == r))
        _, first_per_subject = np.unique(faceset.subjects[candidates], return_index=True)
        picks = rng.permutation(candidates[first_per_subject])[:n_examples]
        for c in range(n_examples):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(picks):
                ax.imshow(faceset.images[picks[c], 0], cmap="gray", vmin=0, vmax=255)
                ax.set_title(str(faceset.subjects[picks[c]]), fontsize=7)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.tight_layout()
    return fig


def au_gallery(neutral: np.ndarray, on: dict[int, np.ndarray], ncols: int = 7):
    """Each AU on one face: the crop with the AU at full intensity above its difference from neutral."""
    aus = list(on)
    nrows = 2 * int(np.ceil((len(aus) + 1) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.55 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    tiles = [("neutral", neutral, None)] + [(au_label(au), on[au], on[au].astype(float) - neutral) for au in aus]
    for k, (title, image, diff) in enumerate(tiles):
        r, c = 2 * (k // ncols), k % ncols
        axes[r, c].imshow(image, cmap="gray", vmin=0, vmax=255)
        axes[r, c].set_title(title.replace(" ", "\n", 1), fontsize=7)
        if diff is not None:
            lim = max(1.0, np.abs(diff).max())
            axes[r + 1, c].imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.tight_layout()
    return fig


def class_balance(faceset: FaceSet):
    counts = faceset.class_counts()
    fig, ax = plt.subplots(figsize=(7, 3))
    sns.barplot(data=counts, x="class", y="images", hue="class", legend=False, ax=ax, palette="viridis")
    for k, n in enumerate(counts["images"]):
        ax.text(k, n, str(n), ha="center", va="bottom", fontsize=8)
    ax.set_title(f"{faceset.name}: images per class")
    ax.set_xlabel("")
    fig.tight_layout()
    return fig


def au_frequencies(faceset: FaceSet):
    """How many FACS-coded frames show each AU."""
    coded = faceset.au_coded().numpy()
    present = faceset.au_present().numpy()[coded]
    counts = pd.DataFrame({"AU": faceset.au_codes, "frames": present.sum(axis=0)})
    fig, ax = plt.subplots(figsize=(8, 3))
    sns.barplot(data=counts, x="AU", y="frames", color="steelblue", ax=ax)
    ax.set_title(f"{faceset.name}: AU present on {coded.sum()} FACS-coded frames")
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig
