"""One call per network for a notebook: the top-k view (``analyse``), the full measurement (``measure``), the
stability over networks, and the verdict per AU from the controls.

``measure`` gives every number notebook 04 reports for a network at one layer: recovery at the chosen k and as
a curve over k with a subject-bootstrap band, each AU's best unit by ROC AUC with a bootstrap interval that
re-selects the unit in every resample, the AUC and average precision of every (unit, AU), and network
dissection with its permutation null. The same settings are applied to every network, controls first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from fercore import units
from fercore.data.faceset import FaceSet
from fercore.fau.alignment import RegionCache, recovery, recovery_curve, spatial_alignment
from fercore.fau.dissection import Dissection, netdissect
from fercore.fau.enrichment import enrichment
from fercore.fau.scores import best_unit_auc, probes, unit_scores


@dataclass
class Analysis:
    """The top-k view of one network: enrichment and alignment of each unit's top k images."""

    layer: str
    top: pd.DataFrame  # units.mine_topk table (k rows per unit)
    enrichment: pd.DataFrame  # per (filter, AU)
    alignment: pd.DataFrame  # per (filter, AU)
    score: float  # recovery score
    recovery: pd.DataFrame  # per AU


def analyse(model: nn.Module, faceset: FaceSet, layer: str | None = None, k: int = 30, min_images: int = 20,
            q_max: float = 0.01, min_inside: float = 0.6, by_emotion: bool = True, progress: bool = True,
            preprocess: Callable | None = None, top: pd.DataFrame | None = None,
            regions: RegionCache | None = None) -> Analysis:
    """Mine, test enrichment, measure alignment and recovery for one network on FACS-coded frames.

    Args:
        model: any network (``preprocess`` turns uint8 faces into its input if it is not one of fercore's).
        layer: a module's dotted name; None: ``units.default_layer`` (the last convolution with a map of 3x3 or more).
        top: a ``mine_topk`` table of this layer mined with at least k images per unit (its first k are used).
    """
    layer = layer or units.default_layer(model, preprocess, faceset.image_size)
    if top is None:
        top = units.mine_topk(model, faceset, layer, k=k, progress=progress, preprocess=preprocess)
    top = top[top["rank"] < k]
    enrich = enrichment(top, faceset, by_emotion=by_emotion)
    field = units.receptive_field(model, layer, preprocess, faceset.image_size)
    align = spatial_alignment(top, faceset, field, units.input_scale(model, faceset, preprocess),
                              regions=regions or RegionCache(faceset))
    score, table = recovery(enrich, align, min_images, q_max, min_inside)
    return Analysis(layer=layer, top=top, enrichment=enrich, alignment=align, score=score, recovery=table)


@dataclass
class Measures:
    """What the FAU analysis measures of one network at one layer (an entry of notebook 04's ``networks``)."""

    analysis: Analysis  # the top-k view at the chosen k
    curve: pd.DataFrame  # recovery and enriched pairs over k, with bootstrap bands (``recovery_curve``)
    best_unit: pd.DataFrame  # per AU: unit, auc, ci_low, ci_high, ap, present (``best_unit_auc``)
    scores: pd.DataFrame  # per (unit, AU): auc, ap (``unit_scores``)
    dissection: Dissection

    def record(self) -> dict:
        """The network's entry of 04_fau_analysis.json."""
        units_ = self.dissection.units
        return {"layer": self.analysis.layer, "recovery": self.analysis.score,
                "recovery_by_k": dict(zip(self.curve["k"].astype(str), self.curve["recovery"], strict=True)),
                "recovery_band": {str(r.k): [r.recovery_low, r.recovery_high] for r in self.curve.itertuples()},
                "enriched_by_k": dict(zip(self.curve["k"].astype(str), self.curve["enriched"], strict=True)),
                "best_unit_auc": {au: {"unit": int(r.unit), "auc": r.auc, "ci_low": r.ci_low, "ci_high": r.ci_high,
                                       "ap": r.ap} for au, r in self.best_unit.iterrows()},
                "dissection": {"units_detecting": self.dissection.units_detecting,
                               "aus_detected": self.dissection.aus_detected,
                               "null_units_detecting": self.dissection.null_units_detecting,
                               "mean_best_iou": float(units_["iou"].mean()),
                               "null_mean_best_iou": float(units_["null_iou"].mean())}}


def measure(model: nn.Module, faceset: FaceSet, layer: str | None = None, k: int = 30, ks=range(10, 101, 10),
            min_images: int = 20, q_max: float = 0.01, min_inside: float = 0.6, n_boot: int = 1000,
            curve_boot: int = 200, permutations: int = 10, by_emotion: bool = False, seed: int = 0,
            progress: bool = True, preprocess: Callable | None = None,
            regions: RegionCache | None = None) -> Measures:
    """Every measure of the FAU analysis for one network (see the module's docstring); ``regions`` can be shared
    between networks of the same FaceSet (the masks are computed once)."""
    layer = layer or units.default_layer(model, preprocess, faceset.image_size)
    regions = regions or RegionCache(faceset)
    top, features = units.mine(model, faceset, layer, k=2 * max(*ks, k), progress=progress, preprocess=preprocess)
    analysis = analyse(model, faceset, layer, k, min_images, q_max, min_inside, by_emotion, progress, preprocess,
                       top=top, regions=regions)
    field = units.receptive_field(model, layer, preprocess, faceset.image_size)
    curve = recovery_curve(top, faceset, field, units.input_scale(model, faceset, preprocess), ks, min_images, q_max,
                           min_inside, curve_boot, seed=seed, regions=regions)
    return Measures(analysis=analysis, curve=curve,
                    best_unit=best_unit_auc(features, faceset, min_images, n_boot, seed=seed),
                    scores=unit_scores(features, faceset, min_images),
                    dissection=netdissect(model, faceset, layer, permutations=permutations, min_images=min_images,
                                          seed=seed, preprocess=preprocess))


def stability(measures: dict[str, Measures]) -> dict:
    """Mean and std over networks (e.g. the folds' and seeds' trained networks): recovery, each AU's best AUC,
    the share of units that detect an AU."""
    def spread(values) -> dict:
        values = np.asarray(list(values), dtype=float)
        return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan")}

    aucs = pd.DataFrame({name: m.best_unit["auc"] for name, m in measures.items()})
    return {"networks": list(measures), "recovery": spread(m.analysis.score for m in measures.values()),
            "units_detecting": spread(m.dissection.units_detecting for m in measures.values()),
            "best_unit_auc": {au: spread(row) for au, row in aucs.iterrows()}}


VERDICTS = ("learned", "partly", "not learned")


def verdicts(trained: Measures, random: Measures, learned_auc: float = 0.85) -> pd.DataFrame:
    """The rule notebook 04 states, per AU scored in both networks:

    - **learned**: the trained network's best-unit AUC interval lies above the random network's interval (more
      than the architecture alone gives), that AUC is at least ``learned_auc``, and the AU is recovered at the
      chosen k (a unit's top faces are enriched in the AU and it fires inside the AU's region);
    - **partly**: above the random interval, but weaker than ``learned_auc`` or not localised;
    - **not learned**: the intervals overlap.

    Returns:
        Index AU; columns auc, ci_low, ci_high, random_ci_high, recovered, verdict.
    """
    table = trained.best_unit[["auc", "ci_low", "ci_high"]].join(
        random.best_unit[["ci_high"]].rename(columns={"ci_high": "random_ci_high"}), how="inner")
    table["recovered"] = trained.analysis.recovery["recovered"].reindex(table.index).fillna(False).astype(bool)
    above = table["ci_low"] > table["random_ci_high"]
    strong = above & (table["auc"] >= learned_auc) & table["recovered"]
    table["verdict"] = np.where(strong, "learned", np.where(above, "partly", "not learned"))
    return table


OUTPUTS_BAR = "au_supervised outputs: AUs with AUC >= 0.9"
CONTROL_BARS = {OUTPUTS_BAR: 0.9, "au_supervised AUs with best-unit AUC >= 0.9": 0.9, "au_supervised recovery": 0.9,
                "random recovery (at most)": 0.1}


def calibration(measures: dict[str, Measures], output_auc: pd.Series | None = None) -> dict:
    """The instrument's quality bars on the controls, stated before the expression network is scored: the
    AU-trained network's best units reach AUC >= 0.9 for at least 90% of the AUs and a recovery of at least 0.9;
    random weights recover at most 0.1; and (once "trained" is measured) the permutation null's mean IoU lies
    below the trained network's. With ``output_auc`` (``fau.output_auc`` of the AU-trained network) also the
    precondition of the first bar: the network's own outputs detect at least 90% of the AUs at AUC >= 0.9 (where
    they do not, the control does not encode those AUs and no instrument can find units for them).
    Returns name -> {"value", "bar", "met"}."""
    checks = {}
    if output_auc is not None:
        checks[OUTPUTS_BAR] = float((output_auc >= 0.9).mean())
    if "au_supervised" in measures:
        control = measures["au_supervised"]
        checks["au_supervised AUs with best-unit AUC >= 0.9"] = float((control.best_unit["auc"] >= 0.9).mean())
        checks["au_supervised recovery"] = control.analysis.score
    if "random" in measures:
        checks["random recovery (at most)"] = measures["random"].analysis.score
    table = {name: {"value": value, "bar": CONTROL_BARS[name],
                    "met": value <= CONTROL_BARS[name] if "at most" in name else value >= CONTROL_BARS[name]}
             for name, value in checks.items()}
    if "trained" in measures:
        units_ = measures["trained"].dissection.units
        null, observed = float(units_["null_iou"].mean()), float(units_["iou"].mean())
        table["trained: null IoU below observed"] = {"value": null, "bar": observed, "met": null < observed}
    return table


def side_by_side(measures: dict[str, Measures], learned_auc: float = 0.9) -> pd.DataFrame:
    """One row per network: recovery at the chosen k with its band, best-unit AUCs (median; share >=
    ``learned_auc``), dissection against its null."""
    rows = {}
    for name, m in measures.items():
        k_row = m.curve.set_index("k").loc[m.analysis.top["rank"].max() + 1]
        aucs, d = m.best_unit["auc"], m.dissection
        rows[name] = {"recovery": m.analysis.score, "recovery 95% band": f"{k_row.recovery_low:.2f}-"
                      f"{k_row.recovery_high:.2f}", "median best-unit AUC": aucs.median(),
                      f"AUs with AUC >= {learned_auc:g}": f"{int((aucs >= learned_auc).sum())}/{len(aucs)}",
                      "units detecting an AU": d.units_detecting, "(null)": d.null_units_detecting,
                      "AUs detected": d.aus_detected, "mean best IoU": d.units["iou"].mean(),
                      "(null IoU)": d.units["null_iou"].mean()}
    return pd.DataFrame(rows).T


def verdict_text(table: pd.DataFrame, controls: dict[str, Measures], learned_auc: float,
                 bars: dict | None = None, output_auc: pd.Series | None = None) -> str:
    """A paragraph stating the answer from the verdict table, the controls' figures and their quality bars
    (``output_auc``: the AU-trained network's own outputs, ``fau.output_auc``)."""
    groups = {v: list(table.index[table["verdict"] == v]) for v in VERDICTS}
    lines = [f"Of {len(table)} AUs scored, {len(groups['learned'])} are learned "
             f"({', '.join(groups['learned']) or 'none'}), {len(groups['partly'])} partly "
             f"({', '.join(groups['partly']) or 'none'}) and {len(groups['not learned'])} not learned "
             f"({', '.join(groups['not learned']) or 'none'})."]
    for name, m in controls.items():
        aucs = m.best_unit["auc"]
        lines.append(f"The {name} network reaches a best-unit AUC of at least {learned_auc:g} for "
                     f"{(aucs >= learned_auc).mean():.0%} of the AUs (median {aucs.median():.2f}) and recovers "
                     f"{m.analysis.score:.0%} of them.")
    missed = [name for name, check in (bars or {}).items() if not check["met"]]
    if missed:
        lines.append(f"The instrument missed {len(missed)} of its quality bars ({'; '.join(missed)}): where even "
                     "the AU-trained control shows no strong, localised unit for an AU, a 'not learned' or 'partly' "
                     "for that AU says as much about the instrument and the data as about the network.")
    if output_auc is not None and (output_auc < 0.9).any():
        weak = output_auc[output_auc < 0.9]
        lines.append(f"The AU-trained network's own outputs stay below an AUC of 0.9 for {len(weak)} of "
                     f"{len(output_auc)} AUs ({', '.join(f'{au} {auc:.2f}' for au, auc in weak.items())}): the "
                     "network as a whole does not tell these apart on this data, so the instrument cannot be expected "
                     "to find strong units for them in either network.")
    lines.append("An AU counts as learned only where the expression network's unit detects it better than any unit "
                 "of the same untrained architecture can (interval above the random network's), strongly "
                 f"(AUC >= {learned_auc:g}) and in the AU's own face region.")
    return " ".join(lines)


def scores_by_layer(networks: dict[str, nn.Module], faceset: FaceSet, layers: list[str], k: int = 30,
                    min_images: int = 20, seed: int = 0, progress: bool = True,
                    preprocess: Callable | None = None, regions: RegionCache | None = None) -> pd.DataFrame:
    """The AU scores of every network at every layer (for views over depth, e.g. trained against random).
    ``regions``: the faceset's AU masks, shared with other calls on the same faceset (made when None).

    Returns:
        One row per (network, layer): network, layer, depth (position in ``layers``), recovery (``analyse``'s
        score, enrichment not conditioned on the emotion), best_auc (mean over AUs of the best unit's ROC AUC),
        probe_auc (mean over AUs of ``probes`` on the layer's pooled features).
    """
    rows = []
    regions = regions or RegionCache(faceset)
    for name, model in networks.items():
        for depth, layer in enumerate(layers):
            top, features = units.mine(model, faceset, layer, k=k, progress=progress, preprocess=preprocess)
            a = analyse(model, faceset, layer, k=k, min_images=min_images, by_emotion=False, progress=progress,
                        preprocess=preprocess, regions=regions, top=top)
            best = unit_scores(features, faceset, min_images).groupby("AU")["auc"].max()
            probe = probes(features, faceset, min_images=min_images, seed=seed)
            rows.append({"network": name, "layer": layer, "depth": depth, "recovery": a.score,
                         "best_auc": float(best.mean()), "probe_auc": float(probe["auc"].mean())})
    return pd.DataFrame(rows)
