""""What we found": each notebook's closing paragraph, written from the JSON the notebook just wrote.

    findings.show(study, "02_benchmark")   # in the notebook's last cell: Markdown, every number from 02_benchmark.json

The numbers come from ``<run_dir>/<notebook>.json`` (``fercore.summaries``), never from cell output, so the text
says what the file says, on any dataset and profile. ``report(notebook, summary)`` is the same text as a string
(tests, scripts); a notebook without a writer here gets a clear error.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from fercore.stats import format_p


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def _datasets(s: dict) -> list[str]:
    counts = s["class_counts"]
    largest, smallest = max(counts, key=counts.get), min(counts, key=counts.get)
    majority = counts[largest] / s["images"]
    tests = [f["test"] for f in s["folds"]]
    lines = [f"**{s['images']:,} images** of {s['subjects']} subjects in {len(s['classes'])} classes; the largest "
             f"class, {largest} ({counts[largest]}), is {_percent(majority)} of them (a classifier that always says "
             f"{largest} scores that), the smallest, {smallest}, has {counts[smallest]}.",
             f"{len(s['folds'])} subject-independent folds; test folds hold {min(tests)}-{max(tests)} images."]
    if s["au_codes"]:
        lines.append(f"{len(s['au_codes'])} action units are FACS-coded ({', '.join(s['au_codes'])}).")
    realism = s.get("realism")
    if realism:
        recall = realism["recall"]
        best, worst = max(recall, key=recall.get), min(recall, key=recall.get)
        lines.append(f"A classifier trained on photographs reads {_percent(realism['apex_accuracy'])} of the apex "
                     f"frames as their emotion (best {best} {_percent(recall[best])}, worst {worst} "
                     f"{_percent(recall[worst])}) and {_percent(realism['neutral_rate'])} of the neutral frames as "
                     f"neutral; OpenCV's Haar cascade finds exactly one face in "
                     f"{_percent(realism['haar']['exactly_one'])} of {realism['haar']['frames']:,} frames.")
    pixel = s["pixel_logistic"]
    lines.append(f"**Yardstick**: logistic regression on {pixel['size']}x{pixel['size']} pixels reaches "
                 f"{_percent(pixel['accuracy_mean'])} +- {_percent(pixel['accuracy_std'])} over "
                 f"{len(pixel['per_fold'])} folds, {100 * (pixel['accuracy_mean'] - majority):+.1f} points over the "
                 "majority class: the line a network must clear.")
    return lines


def _training(s: dict) -> list[str]:
    recall = s["per_class_accuracy"]
    best, worst = max(recall, key=recall.get), min(recall, key=recall.get)
    return [f"**{s['variant']}, test fold {s['fold']}**: {_percent(s['test_accuracy'])} of {s['n_test']} test "
            f"faces, with the checkpoint of iteration {s['best_iteration']:,} of {s['iterations']:,} (validation "
            f"{_percent(s['best_val_accuracy'])}).",
            f"The pixel yardstick scores {_percent(s['pixel_logistic']['fold_accuracy'])} on this fold: a margin of "
            f"{100 * s['margin_over_pixel_fold']:+.1f} points.",
            f"Best recognised: {best} ({_percent(recall[best])}); most missed: {worst} ({_percent(recall[worst])}).",
            f"Training took {s['seconds']:.0f} s at {s['images_per_s']:,.0f} images/s on {s['device']} (measured "
            "in this run, on this machine)."]


def _benchmark(s: dict) -> list[str]:
    lines = []
    for task in s["tasks"]:
        rows = [r for r in s["accuracy"] if r["task"] == task["label"]]
        if not rows:
            continue
        best = max(rows, key=lambda r: r["mean"])
        spread = f" +- {_percent(best['std'])} over {best['n']} folds" if best["n"] > 1 else " (1 fold)"
        cited = f"; the paper's network is cited with {best['reference']}% (unconfirmed)" if best["reference"] else ""
        lines.append(f"**{task['label']}**: the best variant is {best['variant']}, {_percent(best['mean'])}{spread}"
                     f"{cited}.")
        paired = [p for p in s["paired"] if p["task"] == task["label"]]
        significant = [p for p in paired if p["p_holm"] is not None and p["p_holm"] < 0.05]
        if paired:
            largest = max(paired, key=lambda p: abs(p["mean_diff"]))
            lines.append(f"{len(significant)} of {len(paired)} paired comparisons are significant after Holm's "
                         f"adjustment; the largest effect is {largest['effect']} ({largest['a']} -> {largest['b']}): "
                         f"{100 * largest['mean_diff']:+.1f} points, {format_p(largest['p'])}. "
                         f"{largest['n']} folds detect only d_z >= {largest['detectable_d_z']:.1f} with 80% power.")
    pixel = s.get("pixel_logistic")
    if pixel:
        lines.append(f"Over folds {', '.join(map(str, pixel['folds']))}, {pixel['variant']} is "
                     f"{100 * pixel['margin']:+.1f} points above the pixel yardstick "
                     f"({_percent(pixel['accuracy_mean'])} against {_percent(pixel['pixel_mean'])}).")
    cost = s["cost"]
    per_run = statistics.median(r["seconds"] for r in cost["runs"]) if cost["runs"] else 0.0
    lines.append(f"**Cost, measured**: {cost['runs_total']} runs, {cost['grid_training_s'] / 60:.1f} min of training "
                 f"on {', '.join(cost['devices'])} (median {per_run:.0f} s per run); this notebook trained "
                 f"{cost['trained_here']} of them in {cost['notebook_grid_wall_s'] / 60:.1f} min.")
    return lines


def _neurons(s: dict) -> list[str]:
    mined = ", ".join(f"{n} of {layer}" for layer, n in s["filters_mined"].items())
    fields = ", ".join(f"{f['layer']} {f['size']}x{f['size']} ({f['size_in_crop_pixels']:.0f} crop pixels)"
                       for f in s["receptive_fields"])
    checks = s["checks"]
    return [f"**{sum(s['filters_mined'].values())} filters** ({mined}) mined over {s['images_mined']:,} faces, "
            f"the top {s['k']} of each.",
            f"Receptive fields (model input pixels): {fields}.",
            f"The mining checks out on {s['layer']}: recomputed activations differ from the mined ones by at most "
            f"{checks['recomputed_max_abs_diff']:.1e}, and ranking every activation of a subset in full gives the same "
            f"top {s['k']} for {_percent(checks['brute_force_agreement'])} of the filters.",
            f"The strongest filters of {s['layer']}: {', '.join(map(str, s['strongest_filters']))}; "
            f"{len(s['figures'])} figures written."]


def _architectures(s: dict) -> list[str]:
    lines = []
    for a in s["archs"]:
        lines.append(f"**{a['arch']}** ({a['parameters']:,.0f} parameters): {_percent(a['test_accuracy'])} on test "
                     f"fold {s['fold']}; its best layer, {a['best_layer']}, recovers "
                     f"{_percent(a['recovery_trained'])} of the AUs trained against {_percent(a['recovery_random'])} "
                     f"with random weights (probe AUC {a['probe_auc_trained']:.3f} against "
                     f"{a['probe_auc_random']:.3f}).")
    if s["archs"]:
        gain = max(s["archs"], key=lambda a: a["recovery_trained"] - a["recovery_random"])
        lines.append(f"Training adds the most AU recovery over its random copy in {gain['arch']} "
                     f"({100 * (gain['recovery_trained'] - gain['recovery_random']):+.1f} points).")
    return lines


def _fau(s: dict) -> list[str]:
    nets = s["networks"]

    def strong(name: str) -> str:
        aucs = [v["auc"] for v in nets[name]["best_unit_auc"].values()]
        return f"{sum(a >= 0.9 for a in aucs)} of {len(aucs)} AUs"

    missed = [name for name, check in s["calibration"].items() if not check["met"]]
    band = nets["trained"].get("recovery_band", {}).get(str(s["k"]))
    band = f" (95% band {band[0]:.2f}-{band[1]:.2f})" if band else ""
    stability = s["stability"]
    outputs = s["au_supervised_output_auc"]
    detected = sum(auc >= 0.9 for auc in outputs.values())
    return [f"**The instrument on the controls** ({s['layer']}, {s['images']} coded faces): the AU-trained network "
            f"(its own outputs: mean per-AU test AUC {s['au_supervised_test_auc']:.3f}; AUC >= 0.9 over the coded "
            f"faces for {detected} of {len(outputs)} AUs) has a unit of AUC >= 0.9 for {strong('au_supervised')} "
            f"and recovers {_percent(nets['au_supervised']['recovery'])}; the planted network recovers "
            f"{_percent(nets['planted']['recovery'])}; random weights {_percent(nets['random']['recovery'])}.",
            ("Every quality bar of the controls was met." if not missed else
             f"Quality bars missed: {'; '.join(missed)}: read the verdicts with that in mind."),
            f"**The expression network** recovers {_percent(nets['trained']['recovery'])} of the AUs at k = "
            f"{s['k']}{band}; a unit of AUC >= 0.9 exists for {strong('trained')}; "
            f"{_percent(nets['trained']['dissection']['units_detecting'])} of its units detect an AU in network "
            f"dissection (permutation null {_percent(nets['trained']['dissection']['null_units_detecting'])}).",
            f"Over {len(stability['networks'])} networks (the trained folds): recovery "
            f"{stability['recovery']['mean']:.2f} +- {stability['recovery']['std']:.2f}.",
            f"**Answer**: {s['answer']}"]


WRITERS: dict[str, Callable[[dict], list[str]]] = {
    "00_datasets": _datasets, "01_training": _training, "02_benchmark": _benchmark,
    "03_neuron_visualization": _neurons, "04_fau_analysis": _fau, "05_architectures": _architectures,
}


def report(notebook: str, summary: dict) -> str:
    """What notebook ``notebook`` ("00_datasets", ...) found, as Markdown bullets, from its JSON ``summary``."""
    if notebook not in WRITERS:
        raise KeyError(f"no 'What we found' writer for {notebook!r}; fercore.findings has {sorted(WRITERS)}")
    return "\n".join(f"- {line}" for line in WRITERS[notebook](summary))


def bullets(groups: dict[str, list[str]]):
    """Sentences as Markdown lists, one per group under its bold title (e.g. ``stats.conclusions`` per task):
    prose that wraps between words, where printed lines of text wrap anywhere."""
    from IPython.display import Markdown

    return Markdown("\n\n".join(f"**{title}**\n\n" + "\n".join(f"- {line}" for line in lines)
                                  for title, lines in groups.items()))


def show(study, notebook: str):
    """``report`` of what the study's ``<run_dir>/<notebook>.json`` holds, as IPython Markdown (a cell's output)."""
    from IPython.display import Markdown

    return Markdown(report(notebook, study.read(notebook)))


__all__ = ["WRITERS", "bullets", "report", "show"]
