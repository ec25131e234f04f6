"""What each notebook writes to ``<run_dir>/<notebook>.json``: one dataclass per notebook, built from the
objects the notebook already holds, handed to ``Study.write``.

Tests and later notebooks read these files, not cell output, so their fields are the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from fercore import stats
from fercore.data.faceset import FaceSet
from fercore.references import REFERENCE_STATUS


@dataclass
class DatasetsSummary:
    """Notebook 00: the dataset under its protocol, and the pixel yardstick."""

    NOTEBOOK: ClassVar[str] = "00_datasets"
    dataset: str
    protocol: dict
    images: int
    subjects: int
    classes: list
    class_counts: dict
    folds: list
    au_codes: list
    realism: dict | None  # how a classifier trained on photographs reads the faces (None: fer not installed)
    pixel_logistic: dict  # size, accuracy_mean, accuracy_std, per_fold (fold, C, val_accuracy, test_accuracy, ...)

    @classmethod
    def of(cls, faceset: FaceSet, pixel: pd.DataFrame, pixel_size: int, realism: dict | None = None) -> DatasetsSummary:
        """Args: realism: ``fercore.data.synthfacs.realism.realism``'s scores, or None."""
        read = None if realism is None else {
            "apex_accuracy": realism["apex_accuracy"], "neutral_rate": realism["neutral_rate"],
            "recall": realism["recall"].set_index("class")["recall"].dropna().to_dict(), "haar": realism["haar"]}
        return cls(dataset=faceset.name, protocol=faceset.protocol, images=len(faceset),
                   subjects=len(set(faceset.subjects)), classes=list(faceset.classes),
                   class_counts=faceset.class_counts().set_index("class")["images"].to_dict(),
                   folds=faceset.fold_sizes().to_dict("records"), au_codes=list(faceset.au_codes), realism=read,
                   pixel_logistic={"size": pixel_size, "accuracy_mean": float(pixel.test_accuracy.mean()),
                                   "accuracy_std": float(pixel.test_accuracy.std()),
                                   "per_fold": pixel.to_dict("records")})


@dataclass
class TrainingSummary:
    """Notebook 01: one run, its confusion on the test fold, and its margin over the pixel yardstick."""

    NOTEBOOK: ClassVar[str] = "01_training"
    dataset: str
    profile: str
    variant: str
    fold: int
    config: dict
    execution: dict
    device: str
    test_accuracy: float
    test_loss: float
    n_test: int
    best_iteration: int
    best_val_accuracy: float
    iterations: int
    evaluations: list
    seconds: float
    images_per_s: float
    per_class_accuracy: dict
    confusion_counts: list
    pixel_logistic: dict  # fold_accuracy, accuracy_mean
    margin_over_pixel_fold: float

    @classmethod
    def of(cls, result, classes: list[str], confusion_counts: pd.DataFrame, datasets: dict) -> TrainingSummary:
        """Args: result: the TrainResult; confusion_counts: its test confusion (counts); datasets: notebook 00's
        JSON (for the pixel yardstick)."""
        config = result.config
        pixel = datasets["pixel_logistic"]
        pixel_fold = next(f["test_accuracy"] for f in pixel["per_fold"] if f["fold"] == config["fold"])
        counts = confusion_counts.to_numpy()
        recall = counts.diagonal() / counts.sum(axis=1).clip(min=1)
        return cls(dataset=config["dataset"], profile=config["profile"], variant=config["variant"],
                   fold=config["fold"], config=config, execution=result.execution, device=result.device,
                   test_accuracy=result.test_accuracy, test_loss=result.test_loss, n_test=int(counts.sum()),
                   best_iteration=result.best_iteration, best_val_accuracy=result.best_val_accuracy,
                   iterations=result.iterations, evaluations=result.metrics()["iteration"].tolist(),
                   seconds=result.seconds, images_per_s=result.images_per_s,
                   per_class_accuracy=dict(zip(classes, recall.tolist(), strict=True)),
                   confusion_counts=counts.tolist(),
                   pixel_logistic={"fold_accuracy": pixel_fold, "accuracy_mean": pixel["accuracy_mean"]},
                   margin_over_pixel_fold=result.test_accuracy - pixel_fold)


@dataclass
class BenchmarkSummary:
    """Notebook 02: the grid's accuracy beside the cited numbers, per class, confusions, paired tests, cost."""

    NOTEBOOK: ClassVar[str] = "02_benchmark"
    dataset: str
    profile: str
    device: str
    overrides: dict
    tasks: list
    accuracy: list
    table: str
    reference_status: str
    references: list
    per_class: dict
    confusion: dict
    paired: list
    conclusions: dict
    cost: dict
    pixel_logistic: dict | None

    @classmethod
    def of(cls, grid, profile: str, device: str, overrides: dict, tables: dict, notebook_wall_s: float,
           pixel: dict | None) -> BenchmarkSummary:
        """Args: grid: ``accuracy.collect``'s TaskRuns; tables: "accuracy", "printed", "references", "cost" tables
        and "per_class", "confusions", "paired" dicts (task label -> table) as the notebook computed them."""
        paired = tables["paired"]
        return cls(
            dataset=grid[0].task.dataset, profile=profile, device=device, overrides=overrides,
            tasks=[{"label": t.task.label, "protocol": t.task.protocol, "folder": t.task.folder,
                    "reference": t.task.reference, "classes": t.classes, "runs": len(t.runs), "missing": t.missing}
                   for t in grid],
            accuracy=tables["accuracy"].to_dict("records"), table=tables["printed"].to_string(),
            reference_status=REFERENCE_STATUS, references=tables["references"].to_dict("records"),
            per_class={label: frame.to_dict("index") for label, frame in tables["per_class"].items()},
            confusion={label: {v: m.to_numpy().tolist() for v, m in matrices.items()}
                       for label, matrices in tables["confusions"].items()},
            paired=[dict(row, task=label) for label, comparisons in paired.items()
                    for row in comparisons.to_dict("records")],
            conclusions={label: stats.conclusions(comparisons) for label, comparisons in paired.items()},
            cost={"runs": [dict(row, task=t.task.label) for t in grid for row in t.runs.to_dict("records")],
                  "per_variant": tables["cost"].to_dict("records"),
                  "grid_training_s": float(sum(t.runs["seconds"].sum() for t in grid)),
                  "runs_total": sum(len(t.runs) for t in grid),
                  "devices": sorted({d for t in grid for d in t.runs["device"]}),
                  "trained_here": sum(t.trained for t in grid), "notebook_grid_wall_s": notebook_wall_s},
            pixel_logistic=pixel)


@dataclass
class NeuronsSummary:
    """Notebook 03: what was mined, the receptive fields, the mining checks, the figures."""

    NOTEBOOK: ClassVar[str] = "03_neuron_visualization"
    arch: str
    variant: str
    fold: int
    layer: str
    k: int
    filters_mined: dict
    images_mined: int
    receptive_fields: list
    checks: dict
    strongest_filters: list
    figures: list


@dataclass
class FauSummary:
    """Notebook 04: the instrument calibrated on controls, then applied to the expression network.

    ``networks`` maps "planted", "au_supervised", "random", "trained" to ``fau.Measures.record()`` (recovery,
    recovery_by_k, best_unit_auc: AU -> unit, auc, ci_low, ci_high, dissection: units_detecting, aus_detected,
    ...); ``verdict`` maps each AU to "learned", "partly" or "not learned" by ``fau.verdicts``' rule."""

    NOTEBOOK: ClassVar[str] = "04_fau_analysis"
    arch: str
    variant: str
    fold: int
    layer: str
    k: int
    q_max: float
    min_inside: float
    learned_auc: float
    images: int
    au_images: dict
    au_supervised_test_auc: float  # the AU-trained control's own mean per-AU test AUC (its output layer)
    au_supervised_output_auc: dict  # AU -> the control's own output's AUC over all coded images
    networks: dict
    calibration: dict  # the controls' quality bars: name -> {"value", "bar", "met"}
    stability: dict  # ``fau.stability`` over the trained folds' networks
    enriched_pairs: dict
    probe_auc_mean: dict
    counterfactual_best_selectivity: dict
    verdict: dict
    answer: str  # the paragraph of ``fau.verdict_text``


@dataclass
class ArchitecturesSummary:
    """Notebook 05: every arch's accuracy on one fold, and its AU scores layer by layer against its random copy."""

    NOTEBOOK: ClassVar[str] = "05_architectures"
    variant: str
    fold: int
    k: int
    archs: list  # arch, parameters, test_accuracy, seconds, best_layer, recovery trained / random there
    scores: list  # fau.scores_by_layer rows with an arch column


__all__ = ["ArchitecturesSummary", "BenchmarkSummary", "DatasetsSummary", "FauSummary", "NeuronsSummary",
           "TrainingSummary"]
