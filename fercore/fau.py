"""FAU analysis: do a network's filters line up with facial action units?

The paper showed pictures; these functions turn the claim into numbers that can fail:
- ``enrichment``: is an AU over-represented among the images that excite a filter most?
  (counts, odds ratio, one-sided Fisher p, Benjamini-Hochberg q, KL divergence; optionally
  conditioned on the emotion label, so an AU that only rides along with its class is told apart)
- ``spatial_alignment`` / ``dissection_iou``: do the filter's top activations sit where the AU acts?
- ``recovery``: on SynthFACS, the share of AUs that some filter both tracks and localises.
- ``probes``: how well AU presence is decoded linearly from pooled features.
- ``counterfactual_selectivity``: switch one AU on and off on the same rendered face.
Run every analysis on a random-weight network of the same architecture as the control.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, hypergeom
from torch import nn

from fercore import units
from fercore.data.faceset import FaceSet
from fercore.facs import au_number, au_region, has_region
from fercore.progress import tqdm


def coded_frames(faceset: FaceSet) -> FaceSet:
    """The FACS-coded frames (apex frames, and neutral first frames coded as no AU)."""
    return faceset.subset(faceset.au_coded())


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini-Hochberg q-values (false discovery rate) of p-values of any shape."""
    p = np.asarray(p, dtype=float)
    return false_discovery_control(p.ravel(), method="bh").reshape(p.shape)


def enrichment(top: pd.DataFrame, faceset: FaceSet, by_emotion: bool = False) -> pd.DataFrame:
    """Is each AU over-represented among each filter's top-k images?

    Args:
        top: ``units.mine_topk`` table mined on this ``faceset`` (image = index into it).
        faceset: FACS-coded frames (``coded_frames``); AU presence comes from ``faceset.aus``.
        by_emotion: also test within emotion labels (Cochran-Mantel-Haenszel over the strata
            of ``faceset.labels``), so an AU that is enriched only because its class is gets
            a large conditional p.

    Returns:
        One row per (filter, AU): filter, AU, k (top images), in_top (of them with the AU),
        present (images with the AU in the whole set), n (set size), top_rate, base_rate,
        odds_ratio (Haldane-corrected), p (one-sided Fisher / hypergeometric), q (BH over all
        rows), kl (per filter: KL divergence of the AU distribution of its top-k from the
        whole set's, in nats); with ``by_emotion``: p_emotion, q_emotion.
    """
    present = faceset.au_present().numpy()  # (N, A)
    n, n_aus = present.shape
    filters = np.sort(top["filter"].unique())
    members = [top.loc[top["filter"] == f, "image"].to_numpy() for f in filters]
    k = np.array([len(m) for m in members])[:, None]  # (F, 1)
    in_top = np.stack([present[m].sum(axis=0) for m in members])  # (F, A)
    total = present.sum(axis=0)[None, :]  # (1, A)
    p = hypergeom.sf(in_top - 1, n, total, k)  # P(X >= in_top): Fisher's exact test, one-sided
    odds = ((in_top + 0.5) * (n - k - total + in_top + 0.5)) / ((k - in_top + 0.5) * (total - in_top + 0.5))
    eps = 1e-3
    top_dist = (in_top + eps) / (in_top + eps).sum(axis=1, keepdims=True)
    base_dist = (total + eps) / (total + eps).sum()
    kl = (top_dist * np.log(top_dist / base_dist)).sum(axis=1)
    table = pd.DataFrame({
        "filter": np.repeat(filters, n_aus), "AU": np.tile(faceset.au_codes, len(filters)),
        "k": np.repeat(k[:, 0], n_aus), "in_top": in_top.ravel(), "present": np.tile(total[0], len(filters)),
        "n": n, "top_rate": (in_top / k).ravel(), "base_rate": np.tile(total[0] / n, len(filters)),
        "odds_ratio": odds.ravel(), "p": p.ravel(), "q": benjamini_hochberg(p).ravel(),
        "kl": np.repeat(kl, n_aus),
    })
    if by_emotion:
        table["p_emotion"] = _stratified_p(members, present, faceset.labels.numpy()).ravel()
        table["q_emotion"] = benjamini_hochberg(table["p_emotion"].to_numpy())
    return table


def _stratified_p(members, present: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Cochran-Mantel-Haenszel p-values (F, A): top-k membership vs AU, within each stratum."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    out = np.ones((len(members), present.shape[1]))
    levels = np.unique(strata)
    for f, m in enumerate(members):
        chosen = np.zeros(len(present), dtype=bool)
        chosen[m] = True
        for a in range(present.shape[1]):
            tables = []
            for level in levels:
                s = strata == level
                t = np.array([[np.sum(chosen[s] & present[s, a]), np.sum(chosen[s] & ~present[s, a])],
                              [np.sum(~chosen[s] & present[s, a]), np.sum(~chosen[s] & ~present[s, a])]], float)
                if t.sum(axis=0).all() and t.sum(axis=1).all():  # strata without variation carry no information
                    tables.append(t)
            if tables:
                result = StratifiedTable(np.dstack(tables)).test_null_odds(correction=True)
                # One-sided: only enrichment (top-k has more of the AU than expected) counts.
                expected = sum(t.sum(axis=1)[0] * t.sum(axis=0)[0] / t.sum() for t in tables)
                observed = sum(t[0, 0] for t in tables)
                out[f, a] = result.pvalue / 2 if observed > expected else 1 - result.pvalue / 2
    return out


# ---- where the filters look ----

class RegionCache:
    """AU region masks per (image, AU), computed on first use (convex hulls of landmarks)."""

    def __init__(self, faceset: FaceSet):
        self.faceset = faceset
        self._masks: dict[tuple[int, str], np.ndarray] = {}

    def __call__(self, image: int, au: str) -> np.ndarray:
        key = (int(image), au)
        if key not in self._masks:
            landmarks = self.faceset.landmarks[image].numpy()
            self._masks[key] = au_region(au_number(au), landmarks, self.faceset.image_size)
        return self._masks[key]


def centres_in_faceset_pixels(top: pd.DataFrame, field: units.ReceptiveField, scale: float) -> np.ndarray:
    """(len(top), 2) integer (row, col) of each unit's receptive-field centre on the face crop."""
    cy, cx = field.centre(top["y"].to_numpy(), top["x"].to_numpy())
    return np.stack([np.floor((cy + 0.5) * scale), np.floor((cx + 0.5) * scale)], axis=1).astype(int)


def spatial_alignment(top: pd.DataFrame, faceset: FaceSet, field: units.ReceptiveField, scale: float = 1.0,
                      aus: list[str] | None = None, regions: RegionCache | None = None) -> pd.DataFrame:
    """Share of each filter's top-k receptive-field centres that fall inside each AU's region.

    Each centre is tested against the region drawn from the landmarks of its own image.

    Returns:
        One row per (filter, AU): filter, AU, inside (share of the top-k centres in the region;
        NaN for AUs without a face region, such as head or eye movements).
    """
    regions = regions or RegionCache(faceset)
    aus = aus or faceset.au_codes
    size = faceset.image_size
    centres = np.clip(centres_in_faceset_pixels(top, field, scale), 0, size - 1)
    images = top["image"].to_numpy()
    filters = top["filter"].to_numpy()
    rows = []
    for au in aus:
        if not has_region(au_number(au)):
            rows.append(pd.DataFrame({"filter": np.unique(filters), "AU": au, "inside": np.nan}))
            continue
        hit = np.array([regions(i, au)[r, c] for i, (r, c) in zip(images, centres, strict=True)])
        share = pd.Series(hit).groupby(filters).mean()
        rows.append(pd.DataFrame({"filter": share.index, "AU": au, "inside": share.to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def dissection_iou(model: nn.Module, faceset: FaceSet, top: pd.DataFrame, layer: str, pairs: pd.DataFrame,
                   regions: RegionCache | None = None, threshold: float = 0.5,
                   preprocess: Callable | None = None) -> pd.DataFrame:
    """Network-dissection IoU between a filter's active area and an AU region, on its top-k images.

    The filter's map on each top image is laid on the crop by its receptive-field geometry
    (``units.maps_on_faces``, right for any padding) and thresholded at ``threshold`` x its peak on
    that image; IoU = summed intersection / summed union over the top-k images.

    Args:
        pairs: rows with filter and AU (e.g. each filter's best AU).

    Returns:
        ``pairs`` with an ``iou`` column.
    """
    regions = regions or RegionCache(faceset)
    field = units.receptive_field(model, layer, preprocess, faceset.image_size)
    scale = units.input_scale(model, faceset, preprocess)
    ious = []
    for f, au in pairs[["filter", "AU"]].itertuples(index=False):
        images = top.loc[top["filter"] == f, "image"].to_numpy()
        inter = union = 0
        for batch, maps in units.layer_maps(model, faceset, layer, images, channels=[f], preprocess=preprocess):
            maps = units.maps_on_faces(maps, field, scale, faceset.image_size)[:, 0]  # (b, S, S)
            peak = maps.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
            active = (maps >= threshold * peak).cpu().numpy()  # (b, size, size)
            masks = np.stack([regions(i, au) for i in batch])
            inter, union = inter + (active & masks).sum(), union + (active | masks).sum()
        ious.append(inter / max(1, union))
    return pairs.assign(iou=ious)


def best_per_au(enrich: pd.DataFrame, align: pd.DataFrame, q_max: float = 0.01, min_inside: float = 0.6):
    """For each AU, its best filter: significantly enriched and aligned if any, else the most enriched."""
    table = enrich.merge(align, on=["filter", "AU"])
    table["recovers"] = (table["q"] < q_max) & (table["inside"] >= min_inside)
    order = table.sort_values(["recovers", "q", "odds_ratio"], ascending=[False, True, False])
    return order.groupby("AU", sort=False).head(1).set_index("AU")


def recovery(enrich: pd.DataFrame, align: pd.DataFrame, min_images: int = 20, q_max: float = 0.01,
             min_inside: float = 0.6) -> tuple[float, pd.DataFrame]:
    """Ground-truth recovery score: the share of AUs (with at least ``min_images`` images and a
    face region) for which at least one filter is significantly enriched (q < ``q_max``) and spatially aligned
    (at least ``min_inside`` of its top-k centres in the AU's region).

    Returns:
        (score, per-AU table: present, best filter, its q, odds ratio, inside share, recovered).
    """
    best = best_per_au(enrich, align, q_max, min_inside)
    best = best[(best["present"] >= min_images) & best["inside"].notna()]  # AUs without a region are not scored
    table = best[["present", "filter", "in_top", "k", "odds_ratio", "q", "inside", "recovers"]].rename(
        columns={"recovers": "recovered"})
    table = table.loc[sorted(table.index, key=au_number)]
    return float(table["recovered"].mean()) if len(table) else float("nan"), table


# ---- decoding AUs from features ----

def pooled_features(model: nn.Module, faceset: FaceSet, layer: str, preprocess: Callable | None = None) -> np.ndarray:
    """(N, C) peak activation of every channel of ``layer`` on every image (global max pool)."""
    peaks = [maps.flatten(2).amax(dim=2).cpu().numpy()
             for _, maps in units.layer_maps(model, faceset, layer, preprocess=preprocess)]
    return np.concatenate(peaks)  # (N, C)


def probes(features: np.ndarray, faceset: FaceSet, n_folds: int = 5, min_images: int = 20, seed: int = 0):
    """AUC of a linear probe for each AU's presence, under subject-independent folds.

    Args:
        features: (N, C) from ``pooled_features``.

    Returns:
        One row per AU with at least ``min_images`` positives: AU, present, auc.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    present = faceset.au_present().numpy()
    groups = faceset.subjects
    rows = []
    for a, au in enumerate(faceset.au_codes):
        y = present[:, a]
        if y.sum() < min_images or (~y).sum() < min_images:
            continue
        scores = np.zeros(len(y))
        folds = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for train, test in folds.split(features, y, groups):
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            probe.fit(features[train], y[train])
            scores[test] = probe.predict_proba(features[test])[:, 1]
        rows.append({"AU": au, "present": int(y.sum()), "auc": float(roc_auc_score(y, scores))})
    return pd.DataFrame(rows)


# ---- counterfactuals on SynthFACS ----

def counterfactual_selectivity(model: nn.Module, aus: list[int], layer: str, n_faces: int = 24, intensity: float = 4,
                               seed: int = 0, progress: bool = True,
                               preprocess: Callable | None = None) -> pd.DataFrame:
    """Render faces with one AU off and on, and measure how each filter's peak activation changes.

    Every face (a random SynthFACS identity, pose and scene) is cut with its neutral crop box,
    so only the AU differs between the two images.

    Returns:
        One row per (filter, AU): filter, AU, delta (mean change of the peak activation),
        selectivity (delta / the filter's activation std over all rendered faces).
    """
    from fercore.data import synthfacs
    from fercore.data.common import make_faceset

    rng = np.random.default_rng([seed, 4242])
    crops = []  # per face: neutral, then each AU on
    for j in tqdm(range(n_faces), desc="rendering counterfactuals", disable=not progress):
        identity = synthfacs.sample_identity(rng)
        pose = synthfacs.sample_pose(rng)
        scene = synthfacs.sample_scene(rng, identity)
        neutral, _, box = synthfacs.render_crop(identity, {}, pose, scene, seed=j)
        crops.append(neutral)
        for au in aus:
            crops.append(synthfacs.render_crop(identity, {f"AU{au}": intensity}, pose, scene, seed=j, box=box)[0])
    n = len(crops)
    faceset = make_faceset("counterfactual", np.stack(crops)[:, None], np.zeros(n), ["face"],
                           subjects=np.repeat(np.arange(n_faces), 1 + len(aus)), meta=pd.DataFrame({"face": range(n)}),
                           splits=[], protocol={})
    peaks = pooled_features(model, faceset, layer, preprocess)
    peaks = peaks.reshape(n_faces, 1 + len(aus), -1)  # (faces, 1 + A, C)
    delta = peaks[:, 1:] - peaks[:, :1]  # (faces, A, C)
    spread = peaks.reshape(-1, peaks.shape[-1]).std(axis=0) + 1e-6  # (C,)
    mean = delta.mean(axis=0)  # (A, C)
    channels = peaks.shape[-1]
    return pd.DataFrame({"filter": np.tile(np.arange(channels), len(aus)),
                         "AU": np.repeat([f"AU{au}" for au in aus], channels),
                         "delta": mean.ravel(), "selectivity": (mean / spread).ravel()})


# ---- one call for a notebook ----

@dataclass
class Analysis:
    """Everything ``analyse`` measured for one network."""

    layer: str
    top: pd.DataFrame  # units.mine_topk table
    enrichment: pd.DataFrame  # per (filter, AU)
    alignment: pd.DataFrame  # per (filter, AU)
    score: float  # recovery score
    recovery: pd.DataFrame  # per AU
    iou: pd.DataFrame  # dissection IoU of each AU's best filter


def analyse(model: nn.Module, faceset: FaceSet, layer: str | None = None, k: int = 30, min_images: int = 20,
            q_max: float = 0.01, min_inside: float = 0.6, by_emotion: bool = True, progress: bool = True,
            preprocess: Callable | None = None) -> Analysis:
    """Mine, test enrichment, measure alignment and recovery for one network on FACS-coded frames.

    Args:
        model: any network (``preprocess`` turns uint8 faces into its input if it is not one of fercore's).
        layer: a module's dotted name; None: ``units.default_layer`` (the last convolution with a map of 3x3 or more).
    """
    layer = layer or units.default_layer(model, preprocess, faceset.image_size)
    top = units.mine_topk(model, faceset, layer, k=k, progress=progress, preprocess=preprocess)
    enrich = enrichment(top, faceset, by_emotion=by_emotion)
    regions = RegionCache(faceset)
    field = units.receptive_field(model, layer, preprocess, faceset.image_size)
    align = spatial_alignment(top, faceset, field, units.input_scale(model, faceset, preprocess), regions=regions)
    score, table = recovery(enrich, align, min_images, q_max, min_inside)
    pairs = table.reset_index()[["filter", "AU"]]
    iou = dissection_iou(model, faceset, top, layer, pairs, regions=regions, preprocess=preprocess)
    return Analysis(layer=layer, top=top, enrichment=enrich, alignment=align, score=score, recovery=table, iou=iou)


def scores_by_layer(networks: dict[str, nn.Module], faceset: FaceSet, layers: list[str], k: int = 30,
                    min_images: int = 20, seed: int = 0, progress: bool = True,
                    preprocess: Callable | None = None) -> pd.DataFrame:
    """The AU scores of every network at every layer (for views over depth, e.g. trained against random).

    Returns:
        One row per (network, layer): network, layer, depth (position in ``layers``), recovery (``analyse``'s
        score, enrichment not conditioned on the emotion), probe_auc (mean over AUs of ``probes`` on the
        layer's pooled features), iou (mean dissection IoU of each AU's best filter).
    """
    rows = []
    for name, model in networks.items():
        for depth, layer in enumerate(layers):
            a = analyse(model, faceset, layer, k=k, min_images=min_images, by_emotion=False, progress=progress,
                        preprocess=preprocess)
            probe = probes(pooled_features(model, faceset, layer, preprocess), faceset, min_images=min_images,
                           seed=seed)
            rows.append({"network": name, "layer": layer, "depth": depth, "recovery": a.score,
                         "probe_auc": float(probe["auc"].mean()), "iou": float(a.iou["iou"].mean())})
    return pd.DataFrame(rows)
