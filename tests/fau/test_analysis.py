"""fercore.fau.analysis: the analysis on CK+'s FACS files and on a user's own network; the verdict rule."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from fercore import fau, units
from fercore.models import ModelConfig, build_model


def test_the_analysis_runs_on_a_ckplus_copys_facs_files(ckplus_tree):
    """Real FACS: the apex frames of every sequence with a FACS file, labelled or not."""
    from fercore.data import load

    faceset = fau.coded_frames(load("ckplus", ckplus_tree.root, frames="peak", unlabelled=True, size=32))
    assert (faceset.labels == -1).any(), "FACS-only sequences are part of the analysis"
    model = build_model(ModelConfig(image_size=32, width=0.125), seed=0)
    analysis = fau.analyse(model, faceset, k=3, min_images=1, progress=False)
    assert set(analysis.enrichment["AU"]) == set(faceset.au_codes)
    assert len(analysis.recovery) == len(faceset.au_codes)
    assert 0 <= analysis.score <= 1


class Nested(torch.nn.Module):
    """A network of the user's own: nested blocks, a residual add, its own input scaling."""

    def __init__(self):
        super().__init__()
        conv = torch.nn.Conv2d
        self.stem = torch.nn.Sequential(conv(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        self.block = torch.nn.ModuleDict({"a": conv(8, 8, 3, padding=1), "b": conv(8, 8, 3, padding=1)})
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block["b"](torch.relu(self.block["a"](x))))
        return self.head(x.mean(dim=(2, 3)))


def test_a_users_own_network_is_mined_and_analysed(ckplus_tree):
    from fercore.data import load

    faceset = fau.coded_frames(load("ckplus", ckplus_tree.root, frames="peak", unlabelled=True, size=32))
    model = Nested().eval()

    def preprocess(faces):  # uint8 (B, 1, 32, 32) -> the network's input
        return faces.float() / 127.5 - 1

    analysis = fau.analyse(model, faceset, k=3, min_images=1, progress=False, preprocess=preprocess)
    assert analysis.layer == "block.b"  # the last convolution with a map of at least 3x3
    assert set(analysis.top["filter"]) == set(range(8)) and analysis.top["y"].max() < 16
    field = units.receptive_field(model, "block.b", preprocess, 32)
    assert (field.size, field.stride) == (12, 2)  # 3x3 conv (3), 2x2 pool (+1), two 3x3 convs at stride 2 (+4, +4)
    assert 0 <= analysis.score <= 1
    with pytest.raises(ValueError, match="carries no input preprocessing: pass preprocess="):
        fau.analyse(model, faceset, k=3, progress=False)


def test_the_verdict_rule_on_hand_made_figures():
    import pandas as pd

    def measures(rows, recovered):
        best = pd.DataFrame(rows, columns=["AU", "auc", "ci_low", "ci_high"]).set_index("AU")
        recovery = pd.DataFrame({"recovered": recovered}, index=best.index)
        return SimpleNamespace(best_unit=best, analysis=SimpleNamespace(recovery=recovery,
                                                                        score=float(recovery["recovered"].mean())))

    trained = measures([("AU1", 0.95, 0.92, 0.97), ("AU4", 0.95, 0.92, 0.97), ("AU12", 0.75, 0.70, 0.80),
                        ("AU25", 0.70, 0.60, 0.78)], [True, False, True, True])
    random = measures([("AU1", 0.70, 0.62, 0.75), ("AU4", 0.70, 0.62, 0.75), ("AU12", 0.65, 0.60, 0.69),
                       ("AU25", 0.72, 0.66, 0.79)], [False] * 4)
    table = fau.verdicts(trained, random, learned_auc=0.85)
    assert table["verdict"].to_dict() == {"AU1": "learned", "AU4": "partly", "AU12": "partly", "AU25": "not learned"}
    text = fau.verdict_text(table, {"random": random}, 0.85)
    assert "1 are learned (AU1), 2 partly (AU4, AU12) and 1 not learned (AU25)" in text
    assert "The random network reaches a best-unit AUC of at least 0.85 for 0% of the AUs" in text
    assert "missed" not in text

    # The quality bars of the controls: AU-trained 2 of 4 AUs at AUC >= 0.9 (bar 90%) and recovery 0.75 (bar
    # 0.9) miss; random recovery 0 (at most 0.1) is met.
    bars = fau.calibration({"au_supervised": trained, "random": random})
    assert {name: (check["value"], check["met"]) for name, check in bars.items()} == {
        "au_supervised AUs with best-unit AUC >= 0.9": (0.5, False), "au_supervised recovery": (0.75, False),
        "random recovery (at most)": (0.0, True)}
    assert "The instrument missed 2 of its quality bars" in fau.verdict_text(table, {}, 0.85, bars)

    # The precondition: the AU-trained network's own outputs detect 3 of 4 AUs at AUC >= 0.9 (bar 90%): missed,
    # and the answer names the AU its outputs miss.
    outputs = pd.Series({"AU1": 0.97, "AU4": 0.93, "AU12": 0.90, "AU25": 0.71})
    bars = fau.calibration({"au_supervised": trained}, outputs)
    assert bars["au_supervised outputs: AUs with AUC >= 0.9"] == {"value": 0.75, "bar": 0.9, "met": False}
    text = fau.verdict_text(table, {}, 0.85, bars, outputs)
    assert "own outputs stay below an AUC of 0.9 for 1 of 4 AUs (AU25 0.71)" in text
    assert "own outputs" not in fau.verdict_text(table, {}, 0.85, bars, outputs.clip(lower=0.9))


def test_measure_gives_every_figure_of_notebook_04(ckplus_tree):
    from fercore.data import load

    faceset = fau.coded_frames(load("ckplus", ckplus_tree.root, frames="peak", unlabelled=True, size=32))
    model = build_model(ModelConfig(image_size=32, width=0.125), seed=0)
    m = fau.measure(model, faceset, k=3, ks=[2, 3], min_images=2, n_boot=50, curve_boot=10, permutations=3,
                    progress=False)
    record = m.record()
    assert record["layer"] == "conv3" and set(record["recovery_by_k"]) == {"2", "3"}
    assert record["recovery"] == record["recovery_by_k"]["3"] == m.analysis.score
    assert set(record["best_unit_auc"]) == set(m.best_unit.index) and len(m.best_unit) > 0
    assert all(v["ci_low"] <= v["ci_high"] for v in record["best_unit_auc"].values())
    assert 0 <= record["dissection"]["units_detecting"] <= 1
    row = fau.side_by_side({"random": m}).loc["random"]
    assert row["recovery"] == m.analysis.score and row["median best-unit AUC"] == m.best_unit["auc"].median()

    # The calibration figure draws an interval that lies wholly above its point estimate (the optimism of
    # re-selecting the best unit in every resample, as on a weakly trained control) instead of raising.
    import dataclasses

    import matplotlib.pyplot as plt

    from fercore import plots

    above = m.best_unit.assign(ci_low=m.best_unit["auc"] + 0.01, ci_high=m.best_unit["auc"] + 0.05)
    fig = plots.instrument_calibration({"random": m, "optimistic": dataclasses.replace(m, best_unit=above)})
    assert len(fig.axes) == 3
    plt.close(fig)
    import pandas as pd  # the AU-trained network's own outputs, drawn over the best units of every AU

    outputs = pd.Series(0.95, index=m.best_unit.index)
    fig = plots.instrument_calibration({"random": m}, outputs)
    [line] = [line for line in fig.axes[1].lines if line.get_label() == "au_supervised outputs"]
    assert list(line.get_ydata()) == [0.95] * len(outputs)
    plt.close(fig)
