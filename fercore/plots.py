"""Figures for the notebooks (matplotlib / seaborn): each returns its Figure."""

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


# ----------------------------------------------------------------------------- training (notebooks 01, 02)


def learning_curves(metrics: pd.DataFrame, best_iteration: int | None = None, title: str | None = None):
    """Loss and accuracy against the iteration, training batches and validation split side by side.

    Args:
        metrics: ``metrics.csv`` of a run (iteration, train_loss, train_acc, val_loss, val_acc).
        best_iteration: marks the selected (best-validation) checkpoint with a dotted line.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, what, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy")):
        ax.plot(metrics["iteration"], metrics[f"train_{what}"], label="train (augmented batches)", color="0.5")
        ax.plot(metrics["iteration"], metrics[f"val_{what}"], label="validation", color="tab:blue", marker=".")
        if best_iteration is not None:
            ax.axvline(best_iteration, color="tab:red", linestyle=":", label="selected checkpoint")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
    axes[1].set_ylim(0, 1.02)
    axes[1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix: pd.DataFrame, title: str | None = None):
    """A row-normalised confusion matrix (``fercore.experiment.confusion``) as a seaborn heatmap."""
    fig, ax = plt.subplots(figsize=(6.2, 5))
    sns.heatmap(matrix, annot=True, fmt=".0%", cmap="Blues", vmin=0, vmax=1, cbar=False, square=True, ax=ax,
                annot_kws={"fontsize": 8})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (rows sum to 100%)")
    fig.tight_layout()
    return fig


def prediction_grid(faceset: FaceSet, predictions: pd.DataFrame, n: int = 12, seed: int = 0, ncols: int = 6):
    """A handful of test faces titled with truth and prediction (red: wrong); up to a third are mistakes.

    Args:
        faceset: the FaceSet the predictions index into.
        predictions: ``predictions.csv`` of a run (index, label, prediction, p_<class>...).
    """
    rng = np.random.default_rng(seed)
    right = predictions[predictions.label == predictions.prediction]
    wrong = predictions[predictions.label != predictions.prediction]
    n_wrong = min(len(wrong), n // 3)
    picks = pd.concat([wrong.sample(n_wrong, random_state=rng), right.sample(min(len(right), n - n_wrong),
                                                                               random_state=rng)])
    nrows = max(1, int(np.ceil(len(picks) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.7 * ncols, 2.0 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, picks.to_dict("records"), strict=False):
        true, guess = faceset.classes[row["label"]], faceset.classes[row["prediction"]]
        p = row[f"p_{guess}"]
        ax.imshow(faceset.images[row["index"], 0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{true}\n-> {guess} ({p:.0%})", fontsize=8, color="black" if true == guess else "tab:red")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- neurons (notebook 03)


def _projection_window(projection: np.ndarray, field, y: int, x: int, side: int) -> np.ndarray:
    """A unit's projection cut to its receptive field and resized to the patch side."""
    from PIL import Image

    top, left, bottom, _ = field.box(y, x)
    from fercore.units import crop_window

    window = crop_window(projection, top, left, bottom - top)
    return np.asarray(Image.fromarray(window.astype(np.float32), mode="F").resize((side, side), Image.NEAREST))


def filter_topk(model, faceset: FaceSet, top: pd.DataFrame, layer: str, unit: int, k: int = 9,
                method: str | None = "deconvolution"):
    """The paper's figure for one filter: its top-k face patches, and below them the projection of
    the unit into pixel space (``method``: "deconvolution" or "guided backprop"; None: patches only)."""
    from fercore import units

    rows = top[(top["filter"] == unit) & (top["rank"] < k)]
    field = units.receptive_field(model, layer)
    scale = units.input_scale(model, faceset)
    patches = units.patches(faceset, rows, field, scale)
    nrows = 1 if method is None else 2
    fig, axes = plt.subplots(nrows, k, figsize=(1.25 * k, 1.35 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for c, (patch, row) in enumerate(zip(patches, rows.to_dict("records"), strict=True)):
        axes[0, c].imshow(patch, cmap="gray", vmin=0, vmax=255)
        axes[0, c].set_title(f"{row['activation']:.2f}", fontsize=7)
        if method is not None:
            projection = units.project(model, faceset, row["image"], layer, (unit, row["y"], row["x"]), method)
            window = _projection_window(projection, field, row["y"], row["x"], patch.shape[0])
            lim = max(1e-12, np.abs(window).max())
            axes[1, c].imshow(window, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle(f"{layer} filter {unit}: top {len(rows)} patches" + ("" if method is None else f" and {method}"),
                 fontsize=9)
    fig.tight_layout()
    return fig


def layer_overview(faceset: FaceSet, top: pd.DataFrame, field, scale: float = 1.0, ncols: int = 16):
    """One tile per filter: the face patch that excites it most."""
    from fercore import units

    first = top[top["rank"] == 0].sort_values("filter")
    patches = units.patches(faceset, first, field, scale)
    return face_grid(patches, titles=[str(f) for f in first["filter"]], ncols=ncols, size=0.8,
                     suptitle="the strongest patch of every filter (filter number above)")


def positions_on_mean_face(faceset: FaceSet, top: pd.DataFrame, field, scale: float = 1.0, filters=None):
    """Where filters fire: the mean receptive-field centre of each filter's top-k on the mean face."""
    from fercore.fau import centres_in_faceset_pixels

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


def grad_cam_grid(faceset: FaceSet, images, cams: np.ndarray, titles=None, ncols: int = 6):
    """Faces with their Grad-CAM map overlaid."""
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.7 * ncols, 1.9 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, i) in enumerate(zip(axes.flat, images, strict=False)):
        face = faceset.images[i, 0].numpy()
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.imshow(cams[k], cmap="jet", alpha=0.4, extent=(-0.5, face.shape[1] - 0.5, face.shape[0] - 0.5, -0.5))
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- action units (notebook 04)


def enrichment_clustermap(enrich: pd.DataFrame, q_floor: float = 1e-30, min_hits: int = 1):
    """Filters x AUs, coloured by -log10 q of the enrichment (clustered); filters without any
    q < 0.05 are left out."""
    table = enrich.assign(score=-np.log10(enrich["q"].clip(lower=q_floor)))
    matrix = table.pivot(index="filter", columns="AU", values="score")
    matrix = matrix[[c for c in enrich["AU"].drop_duplicates()]]
    keep = (matrix > -np.log10(0.05)).sum(axis=1) >= min_hits
    matrix = matrix[keep] if keep.sum() >= 2 else matrix
    grid = sns.clustermap(matrix, cmap="magma_r", col_cluster=False, figsize=(8, max(4, 0.12 * len(matrix) + 2)),
                          cbar_kws={"label": "-log10 q"}, yticklabels=len(matrix) <= 80)
    grid.ax_heatmap.set_xlabel("")
    grid.ax_heatmap.set_ylabel("filter")
    return grid.figure


def recovery_comparison(tables: dict[str, pd.DataFrame]):
    """Per AU: the best filter's enrichment (-log10 q) and alignment (share inside the AU region),
    for each network (e.g. trained and random); filled markers: recovered."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    for (name, table), color in zip(tables.items(), ("tab:blue", "tab:gray", "tab:orange"), strict=False):
        x = np.arange(len(table))
        for ax, column, transform in ((axes[0], "q", lambda v: -np.log10(np.clip(v, 1e-30, 1))),
                                      (axes[1], "inside", lambda v: v)):
            values = transform(table[column].to_numpy(dtype=float))
            ax.scatter(x, values, label=name, color=color, s=28, facecolors=np.where(table["recovered"], color, "none"))
    axes[0].axhline(2, color="tab:red", linestyle=":", linewidth=1)
    axes[0].set_ylabel("-log10 q of the best filter")
    axes[1].axhline(0.6, color="tab:red", linestyle=":", linewidth=1)
    axes[1].set_ylabel("share of top-k centres in the AU region")
    axes[1].set_ylim(-0.03, 1.03)
    for ax in axes:
        ax.set_xticks(np.arange(len(next(iter(tables.values())))))
        ax.set_xticklabels(next(iter(tables.values())).index, rotation=60, fontsize=8)
    axes[0].legend(fontsize=8)
    fig.suptitle("best filter per AU (filled: enriched at q < 0.01 and aligned)", fontsize=10)
    fig.tight_layout()
    return fig


def selectivity_heatmap(selectivity: pd.DataFrame, top_filters: int = 40):
    """AU x filter counterfactual selectivity (change of the peak activation when the AU is
    switched on, in units of the filter's spread); the most selective filters only."""
    matrix = selectivity.pivot(index="AU", columns="filter", values="selectivity")
    matrix = matrix.loc[selectivity["AU"].drop_duplicates()]
    strongest = matrix.abs().max(axis=0).sort_values(ascending=False).index[:top_filters]
    matrix = matrix[sorted(strongest)]
    lim = float(np.nanmax(np.abs(matrix.to_numpy()))) or 1.0
    fig, ax = plt.subplots(figsize=(min(16, 0.3 * matrix.shape[1] + 2), 0.3 * len(matrix) + 1.5))
    sns.heatmap(matrix, cmap="RdBu_r", center=0, vmin=-lim, vmax=lim, ax=ax, cbar_kws={"label": "selectivity"})
    ax.set_xlabel("filter")
    ax.set_ylabel("")
    ax.set_title("switching one AU on: change of each filter's peak activation", fontsize=10)
    fig.tight_layout()
    return fig


def au_best_filters(model, faceset: FaceSet, top: pd.DataFrame, best: pd.DataFrame, layer: str = "conv3",
                    k: int = 6):
    """One row per AU: the top-k patches of its best filter, with the AU's region outlined."""
    from fercore import units
    from fercore.facs import au_number, au_region

    field = units.receptive_field(model, layer)
    scale = units.input_scale(model, faceset)
    fig, axes = plt.subplots(len(best), k, figsize=(1.1 * k + 1.6, 1.15 * len(best)), squeeze=False)
    for r, (au, row) in enumerate(best.iterrows()):
        rows = top[(top["filter"] == row["filter"]) & (top["rank"] < k)]
        patches = units.patches(faceset, rows, field, scale)
        side = patches.shape[1]
        for c in range(k):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(rows):
                continue
            image, y, x = (int(v) for v in rows.iloc[c][["image", "y", "x"]])
            cy, cx = field.centre(y, x)
            t, left = int(round((cy + 0.5) * scale - side / 2)), int(round((cx + 0.5) * scale - side / 2))
            mask = au_region(au_number(au), faceset.landmarks[image].numpy(), faceset.image_size)
            region = units.crop_window(mask, t, left, side)
            ax.imshow(patches[c], cmap="gray", vmin=0, vmax=255)
            if region.any():
                ax.contour(region, levels=[0.5], colors="tab:red", linewidths=0.8)
        status = "recovered" if row.get("recovered", row.get("recovers", False)) else ""
        axes[r, 0].set_ylabel(f"{au} f{int(row['filter'])}\n{status}", fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig
