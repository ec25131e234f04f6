"""Figures for the notebooks, by stage of the study; each function returns its matplotlib Figure.

- ``plots.data``: faces, expressions, action units, class balance (notebook 00);
- ``plots.training``: learning curves, confusions, predictions, a grid's accuracy (notebooks 01, 02);
- ``plots.units``: top patches and projections, positions, Grad-CAM (notebook 03);
- ``plots.fau``: the instrument's calibration, enrichment, recovery, selectivity, best filter per AU (notebook 04).
"""

from fercore.plots.data import au_frequencies, au_gallery, class_balance, expression_grid, face_grid
from fercore.plots.fau import (
    au_best_filters,
    enrichment_clustermap,
    instrument_calibration,
    recovery_comparison,
    scores_by_depth,
    selectivity_heatmap,
)
from fercore.plots.training import (
    confusion_grid,
    confusion_heatmap,
    fold_accuracies,
    learning_curves,
    learning_curves_grid,
    paired_differences,
    per_class_heatmap,
    prediction_grid,
)
from fercore.plots.units import filter_topk, grad_cam_grid, layer_overview, positions_on_mean_face

__all__ = ["au_best_filters", "au_frequencies", "au_gallery", "class_balance", "confusion_grid", "confusion_heatmap",
           "enrichment_clustermap", "expression_grid", "face_grid", "filter_topk", "fold_accuracies",
           "grad_cam_grid", "instrument_calibration", "layer_overview", "learning_curves", "learning_curves_grid",
           "paired_differences", "per_class_heatmap", "positions_on_mean_face", "prediction_grid",
           "recovery_comparison", "scores_by_depth", "selectivity_heatmap"]
