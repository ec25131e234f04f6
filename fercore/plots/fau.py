"""Figures of the FAU analysis (notebook 04): enrichment, recovery, selectivity, best filters per AU."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fercore import units
from fercore.data.faceset import FaceSet
from fercore.facs import au_number, au_region


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


def au_best_filters(model, faceset: FaceSet, top: pd.DataFrame, best: pd.DataFrame, layer: str, k: int = 6,
                    preprocess=None):
    """One row per AU: the top-k patches of its best filter, with the AU's region outlined."""
    field = units.receptive_field(model, layer, preprocess, faceset.image_size)
    scale = units.input_scale(model, faceset, preprocess)
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


def scores_by_depth(scores: pd.DataFrame, measure: str = "recovery"):
    """One panel per arch: ``measure`` at each of its layers (``fau.scores_by_layer``, with an ``arch`` column),
    trained (solid) against random weights (dashed)."""
    archs = list(dict.fromkeys(scores["arch"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(4.2 * len(archs), 3.4), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], archs, strict=True):
        table = scores[scores["arch"] == arch]
        for network, style in (("trained", "-"), ("random", "--")):
            rows = table[table["network"] == network].sort_values("depth")
            ax.plot(rows["depth"], rows[measure], style, marker="o", label=network)
        layers = table.drop_duplicates("depth").sort_values("depth")["layer"]
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=8)
        ax.set_title(arch, fontsize=10)
    axes[0, 0].set_ylabel(measure)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{measure} of the action units, layer by layer", fontsize=10)
    fig.tight_layout()
    return fig


NETWORK_COLORS = {"planted": "tab:green", "au_supervised": "tab:purple", "random": "tab:gray", "trained": "tab:blue"}


def instrument_calibration(measures: dict, output_auc=None):
    """Three panels over networks (``fau.Measures`` by name; controls and the network under study): recovery
    over k with its subject-bootstrap band; each AU's best-unit ROC AUC with its 95% interval (with
    ``output_auc``, a Series AU -> AUC from ``fau.output_auc``: the AU-trained network's own outputs, as black
    dashes); network dissection's share of units detecting an AU, observed against the permutation null."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), gridspec_kw={"width_ratios": [1, 2, 0.8]})
    names = list(measures)
    for n, (name, m) in enumerate(measures.items()):
        color = NETWORK_COLORS.get(name, f"C{n}")
        curve = m.curve
        axes[0].plot(curve["k"], curve["recovery"], marker="o", markersize=3, color=color, label=name)
        axes[0].fill_between(curve["k"], curve["recovery_low"], curve["recovery_high"], color=color, alpha=0.2)
        best = m.best_unit
        x = np.arange(len(best)) + (n - (len(names) - 1) / 2) * 0.8 / len(names)
        # The interval as drawn from its ends: with the best unit re-selected in every resample, a weak network's
        # interval can lie wholly above its point estimate (the selection's optimism), which yerr cannot draw.
        axes[1].vlines(x, best["ci_low"], best["ci_high"], color=color, linewidth=1)
        axes[1].plot(x, best["auc"], "o", markersize=3, color=color, label=name)
        axes[2].bar(n - 0.2, m.dissection.units_detecting, width=0.4, color=color)
        axes[2].bar(n + 0.2, m.dissection.null_units_detecting, width=0.4, color=color, alpha=0.35, hatch="//")
    axes[0].set(xlabel="k (top images per unit)", ylabel="recovery", ylim=(-0.03, 1.03),
                title="recovery over k (95% band)")
    axes[0].legend(fontsize=8)
    aus = next(iter(measures.values())).best_unit.index
    if output_auc is not None:
        axes[1].plot(np.arange(len(aus)), output_auc.reindex(aus), "_", color="black", markersize=14,
                     markeredgewidth=1.5, label="au_supervised outputs")
    axes[1].legend(fontsize=7, ncol=len(names) + 1, loc="lower left")
    axes[1].set_xticks(np.arange(len(aus)), aus, rotation=60, fontsize=8)
    axes[1].axhline(0.5, color="black", linewidth=0.8, linestyle=":")
    axes[1].set(ylabel="ROC AUC of the best unit", title="best unit per AU (95% subject-bootstrap interval)")
    axes[2].set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    axes[2].set(ylabel="share of units detecting an AU", title="dissection (hatched: null)")
    fig.tight_layout()
    return fig
