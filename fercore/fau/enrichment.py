"""Enrichment: is an AU over-represented among the images that excite a unit most?

Counts, odds ratio, one-sided Fisher p (hypergeometric), Benjamini-Hochberg q, KL divergence; optionally
conditioned on the emotion label (Cochran-Mantel-Haenszel), so an AU that only rides along with its class
is told apart from one the unit itself tracks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

from fercore.data.faceset import FaceSet
from fercore.stats import hypergeom_at_least


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
    p = hypergeom_at_least(in_top, n, total, k)  # P(X >= in_top): Fisher's exact test, one-sided
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
