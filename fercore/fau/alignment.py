"""Where a unit fires against where an AU acts: AU regions from each face's landmarks, the share of a unit's
top activations inside them, and the recovery score (an AU some unit both tracks and localises).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter

from fercore import units
from fercore.data.faceset import FaceSet
from fercore.facs import au_number, au_region, has_region
from fercore.stats import hypergeom_at_least

_WEIGHTS_PER_CHUNK = 64  # resamples scored at once in recovery_curve (bounds its memory)
MAX_MARGIN = 1 / 24  # the most an AU region is grown for alignment, as a share of the face crop's side


class RegionCache:
    """AU region masks per (image, AU), computed on first use (convex hulls of landmarks), at the face crop's
    size or another ``size`` (landmarks scaled to it); optionally grown by a margin (see ``inside``)."""

    def __init__(self, faceset: FaceSet, size: int | None = None):
        self.faceset, self.size = faceset, size or faceset.image_size
        self._masks: dict[tuple[int, str, int], np.ndarray] = {}

    def __call__(self, image: int, au: str, margin: int = 0) -> np.ndarray:
        """bool (size, size): the region, grown by ``margin`` pixels in every direction (a square dilation)."""
        key = (int(image), au, int(margin))
        if key not in self._masks:
            if margin:  # a binary dilation by a square: a maximum filter, separable (one pass per axis)
                self._masks[key] = maximum_filter(self(image, au), size=2 * margin + 1, mode="constant", cval=False)
            else:
                landmarks = self.faceset.landmarks[image].numpy() * (self.size / self.faceset.image_size)
                self._masks[key] = au_region(au_number(au), landmarks, self.size)
        return self._masks[key]

    def stack(self, au: str, images, margin: int = 0) -> np.ndarray:
        """bool (len(images), size, size): the AU's region on each of the images."""
        return np.stack([self(i, au, margin) for i in images])


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
    aus = aus or faceset.au_codes
    hits = inside(top, faceset, field, scale, aus, regions)  # (len(top), A)
    filters = top["filter"].to_numpy()
    shares = pd.DataFrame(hits, columns=aus).groupby(filters).mean()  # (F, A); NaN columns stay NaN
    return shares.rename_axis("filter").reset_index().melt(id_vars="filter", var_name="AU", value_name="inside")


def inside(top: pd.DataFrame, faceset: FaceSet, field: units.ReceptiveField, scale: float, aus: list[str],
           regions: RegionCache | None = None) -> np.ndarray:
    """float (len(top), len(aus)): 1 where a top row's receptive-field centre lies in the AU's region of its own
    image, 0 where not, NaN for AUs without a face region (head and eye movements).

    A unit's position is known only to its map's resolution: a centre counts as inside when the region reaches
    into the map cell around it (the region grown by half a stride, in face pixels), so a thin region (the upper
    lids of AU5, the lips of AU23/24) cannot fall between the centres of a map altogether. The growth stops at
    ``MAX_MARGIN`` of the face side (4 pixels of a 96-pixel crop, a lid's height): on a coarse map (a deep layer's
    2x2) a whole quadrant would otherwise count as inside every region it touches."""
    regions = regions or RegionCache(faceset)
    size = faceset.image_size
    margin = int(min(field.stride * scale // 2, MAX_MARGIN * size))
    row, col = np.clip(centres_in_faceset_pixels(top, field, scale), 0, size - 1).T
    images = top["image"].to_numpy()
    unique, where = np.unique(images, return_inverse=True)
    out = np.full((len(top), len(aus)), np.nan)
    for a, au in enumerate(aus):
        if has_region(au_number(au)):
            out[:, a] = regions.stack(au, unique, margin)[where, row, col]
    return out


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


def recovery_curve(top: pd.DataFrame, faceset: FaceSet, field: units.ReceptiveField, scale: float, ks,
                   min_images: int = 20, q_max: float = 0.01, min_inside: float = 0.6, n_boot: int = 200,
                   level: float = 0.95, seed: int = 0, regions: RegionCache | None = None) -> pd.DataFrame:
    """Recovery and enrichment over k, each with a subject-bootstrap band.

    In a resample of the subjects (drawn with replacement; a subject drawn twice counts twice) a unit's top k
    are the first k copies among its mined top images; enrichment (hypergeometric p, BH q over every unit and
    AU) and alignment are computed on them as ``enrichment`` and ``spatial_alignment`` do, so with no
    resampling the score equals ``recovery``'s.

    Args:
        top: ``units.mine_topk`` table mined with at least twice ``max(ks)`` images per unit (room for the
            resamples that leave subjects out).
        ks: the k of the curve, e.g. ``range(10, 101, 10)``.

    Returns:
        One row per k: k, recovery, recovery_low, recovery_high, enriched (pairs at q < q_max), enriched_low,
        enriched_high.
    """
    from fercore.stats import subject_bootstrap

    aus = list(faceset.au_codes)
    present = faceset.au_present().numpy().astype(float)  # (N, A)
    order = top.sort_values(["filter", "rank"])
    units_ = order["filter"].unique()
    images = order["image"].to_numpy().reshape(len(units_), -1)  # (C, R) in rank order
    hits = inside(order, faceset, field, scale, aus, regions).reshape(*images.shape, len(aus))  # (C, R, A)
    scored = (present.sum(0) >= min_images) & ~np.isnan(hits).all(axis=(0, 1))  # (A,)
    weights = np.vstack([np.ones(len(present)), subject_bootstrap(faceset.subjects, n_boot, seed)])  # (1 + B, N)
    hits = np.nan_to_num(hits)
    rows = []
    for k in ks:
        values = np.vstack([_recovered(chunk, images, present, hits, scored, k, q_max, min_inside)
                            for chunk in np.array_split(weights, -(-len(weights) // _WEIGHTS_PER_CHUNK))])
        tail = (1 - level) / 2
        low, high = np.quantile(values[1:], [tail, 1 - tail], axis=0)
        rows.append({"k": int(k), "recovery": values[0, 0], "recovery_low": low[0], "recovery_high": high[0],
                     "enriched": int(values[0, 1]), "enriched_low": low[1], "enriched_high": high[1]})
    return pd.DataFrame(rows)


def _recovered(weights, images, present, hits, scored, k: int, q_max: float, min_inside: float) -> np.ndarray:
    """(W, 2): recovery score and enriched pairs of the top k of every unit, in each of W weightings of the images.

    Args:
        weights: (W, N) copies of each image in each resample; images: (C, R) each unit's mined images in rank
            order; present: (N, A) 0/1; hits: (C, R, A) 0/1 centre inside the AU's region; scored: (A,) bool.
    """
    from scipy.stats import false_discovery_control

    w = weights[:, images]  # (W, C, R) copies of each mined row in each resample
    before = np.cumsum(w, axis=2) - w
    copies = np.clip(k - before, 0, w)  # (W, C, R) copies among the first k
    drawn = copies.sum(2, keepdims=True)  # (W, C, 1), k unless too few were mined
    per_unit = copies.transpose(1, 0, 2)  # (C, W, R): one matrix product per unit below
    in_top = (per_unit @ present[images]).transpose(1, 0, 2)  # (W, C, A)
    total = weights @ present  # (W, A)
    p = hypergeom_at_least(in_top, weights.sum(1)[:, None, None], total[:, None, :], drawn)  # (W, C, A)
    q = false_discovery_control(np.clip(p, 0, 1).reshape(len(w), -1), axis=-1, method="bh").reshape(p.shape)
    share = (per_unit @ hits).transpose(1, 0, 2) / np.maximum(drawn, 1)  # (W, C, A)
    recovered = ((q < q_max) & (share >= min_inside)).any(1)[:, scored]  # (W, scored AUs)
    score = recovered.mean(1) if recovered.shape[1] else np.full(len(w), np.nan)
    return np.stack([score, (q < q_max).sum((1, 2))], axis=1)
