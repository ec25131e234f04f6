"""A yardstick of difficulty: logistic regression on raw pixels under the protocol's folds.

If a deep network does not clearly beat this, a dataset (or a protocol) is too easy for its
accuracy to mean much.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fercore.data.faceset import FaceSet
from fercore.progress import tqdm


def pixel_features(faceset: FaceSet, size: int = 48) -> np.ndarray:
    """(N, size*size) float32: the face crops, area-downsampled, scaled to [0, 1]."""
    images = faceset.images.float() / 255
    if size != faceset.image_size:
        images = F.interpolate(images, size=(size, size), mode="area")
    return images.flatten(1).numpy()


def pixel_logistic(faceset: FaceSet, size: int = 32, Cs=(0.01, 0.1), max_iter: int = 300,
                   folds: list[int] | None = None, progress: bool = True) -> pd.DataFrame:
    """Per fold: pick C on the validation split, report accuracy on the test split.

    Args:
        faceset: a FaceSet with splits.
        size: pixels are downsampled to size x size first (32: 1,024 features; 48 gives the same
            accuracy on SynthFACS at three times the cost).
        Cs: inverse regularisation strengths to choose from (on validation, never on test).
        folds: which folds to run (default: all).

    Returns:
        One row per fold: fold, C, val_accuracy, test_accuracy, n_train, n_test.
    """
    X = pixel_features(faceset, size)
    y = faceset.labels.numpy()
    rows = []
    folds = list(range(len(faceset.splits))) if folds is None else folds
    for k in tqdm(folds, desc="pixel logistic regression", unit="fold", disable=not progress):
        split = faceset.splits[k]
        scaler = StandardScaler().fit(X[split.train])
        Xtr, Xva, Xte = (scaler.transform(X[idx]) for idx in (split.train, split.val, split.test))
        best = None
        for C in Cs:
            with threadpool_limits(1):  # one BLAS thread: 4x faster on these small products, same on any CPU
                model = LogisticRegression(C=C, max_iter=max_iter, tol=1e-3).fit(Xtr, y[split.train])
            val = float((model.predict(Xva) == y[split.val]).mean())
            if best is None or val > best[1]:
                best = (C, val, model)
        C, val, model = best
        rows.append({"fold": k, "C": C, "val_accuracy": val,
                     "test_accuracy": float((model.predict(Xte) == y[split.test]).mean()),
                     "n_train": len(split.train), "n_test": len(split.test)})
    return pd.DataFrame(rows)

