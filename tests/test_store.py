"""fercore.store: the places of a study, atomic writes, and one sanitiser that writes strict JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fercore import store


def test_places_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FERCORE_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("FERCORE_REPORTS", str(tmp_path / "p"))
    monkeypatch.setenv("FERCORE_DATA", str(tmp_path / "d"))
    assert store.default_run_dir("ckplus", "paper") == tmp_path / "r" / "paper-ckplus"
    assert store.default_report_dir("ckplus", "paper") == tmp_path / "p" / "paper-ckplus"
    assert store.data_dir() == tmp_path / "d"
    assert store.run_dir_of(store.experiment_dir("x", "classes6"), "cnn_a", 3) == Path("x/classes6/cnn_a/fold3")
    files = store.RunFiles("x/cnn/fold0")
    assert (files.config.name, files.best.name, files.last.name, files.result.name) == (
        "config.json", "best.pt", "last.pt", "result.json")


def test_experiment_runs_lists_run_folders_in_order(tmp_path):
    for variant, fold in (("cnn_ad", 10), ("cnn", 2), ("cnn_ad", 2), ("cnn", 0)):
        (tmp_path / variant / f"fold{fold}").mkdir(parents=True)
    (tmp_path / "cnn" / "foldx").mkdir()  # not a run folder
    assert [(v, k) for v, k, _ in store.experiment_runs(tmp_path)] == [("cnn", 0), ("cnn", 2), ("cnn_ad", 2),
                                                                       ("cnn_ad", 10)]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = store.write_text(tmp_path / "a" / "x.txt", "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with store.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["x.txt"]


@dataclass
class _Summary:
    name: str
    values: np.ndarray
    score: float


def test_jsonable_is_strict_json():
    data = {"a": np.float32(0.5), "b": (1, np.int64(2)), "c": float("nan"), "d": Path("x/y"),
            "e": _Summary("s", np.array([1.0, math.inf]), np.nan), 3: {np.bool_(True)}}
    plain = store.jsonable(data)
    assert plain == {"a": 0.5, "b": [1, 2], "c": None, "d": "x/y", "e": {"name": "s", "values": [1.0, None],
                                                                            "score": None}, "3": [True]}
    json.dumps(plain, allow_nan=False)
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        store.jsonable({"x": object()})


def test_write_and_read_json(tmp_path):
    path = store.write_json(tmp_path / "r.json", {"x": float("nan")})
    assert store.read_json(path) == {"x": None}
    with pytest.raises(FileNotFoundError, match="missing.json not found. Run notebooks/00_datasets.ipynb first"):
        store.read_json(tmp_path / "missing.json", produced_by="notebooks/00_datasets.ipynb")
