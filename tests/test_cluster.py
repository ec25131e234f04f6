"""fercore.cluster: grids as Ray tasks equal the sequential grid, a killed worker's run resumes from last.pt, and
every way of failing to start is one clear error."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from fercore import cluster
from fercore.cli import main
from fercore.config import TrainConfig
from fercore.execution import Execution
from fercore.experiment import cross_validate
from fercore.store import run_dir_of
from fercore.train import load_result

TINY = dict(image_size=32, width=0.125, iterations=8, batch_size=16, eval_every=4)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is installed by make (the cluster extra)")
    cluster.connect("local")
    yield ray
    ray.shutdown()


def assert_same_grid(a: Path, b: Path, runs) -> None:
    for variant, fold in runs:
        x, y = load_result(run_dir_of(a, variant, fold)), load_result(run_dir_of(b, variant, fold))
        assert x.test_accuracy == y.test_accuracy
        pd.testing.assert_frame_equal(x.metrics(), y.metrics())
        pd.testing.assert_frame_equal(x.predictions(), y.predictions())


@pytest.mark.slow
def test_a_grid_of_ray_tasks_equals_the_sequential_grid(local_ray, tiny_faceset, tmp_path):
    """Same runs, same threads (a Ray task gets one per CPU it was given): the same results."""
    import torch

    grid = dict(variants=["cnn", "cnn_ad"], folds=[0, 1], progress=False, **TINY)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cross_validate(tiny_faceset, tmp_path / "sequential", "quick", **grid)
    finally:
        torch.set_num_threads(threads)
    runs = cross_validate(tiny_faceset, tmp_path / "ray", "quick", cluster="local", **grid)
    assert len(runs) == 4 and (tmp_path / "ray" / "summary.csv").exists()
    assert_same_grid(tmp_path / "sequential", tmp_path / "ray", [("cnn", 0), ("cnn", 1), ("cnn_ad", 0), ("cnn_ad", 1)])
    assert not list((tmp_path / "ray").glob(".fercore-shared-storage-*"))  # the probe is removed


def _ray_task_pids() -> list[int]:
    """Processes of Ray workers that are running a training task (Ray titles them after the task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_train_task"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_a_killed_worker_is_run_again_and_resumes_from_last_pt(local_ray, tiny_faceset, tmp_path):
    config = dict(image_size=32, width=0.25, iterations=240, batch_size=32, eval_every=40)
    out = tmp_path / "grid"
    killed = []

    def kill_one_worker_after_its_first_checkpoint():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if any(out.glob("*/fold*/last.pt")):
                pids = _ray_task_pids()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_after_its_first_checkpoint, daemon=True)
    killer.start()
    # One run, so the worker killed is the one whose last.pt exists.
    cross_validate(tiny_faceset, out, "quick", variants=["cnn_d"], folds=[1], cluster="local", progress=False,
                   **config)
    killer.join(timeout=5)
    assert killed, "no worker was caught running a task"
    sessions = load_result(run_dir_of(out, "cnn_d", 1)).execution["sessions"]
    assert len(sessions) == 2 and sessions[1]["from_iteration"] > 0, "the run went on from its last.pt"
    cross_validate(tiny_faceset, tmp_path / "uninterrupted", "quick", variants=["cnn_d"], folds=[1],
                   cluster="local", progress=False, **config)
    assert_same_grid(out, tmp_path / "uninterrupted", [("cnn_d", 1)])


def test_ray_missing_unreachable_cluster_and_unshared_storage(monkeypatch, tmp_path, tiny_faceset):
    config = TrainConfig(dataset="tiny", **TINY)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(cluster.ClusterError, match=r"needs Ray, an optional extra: pip install -e '.\[cluster\]'"):
        cluster.train_grid(tiny_faceset, [config], tmp_path, Execution(), "local")
    monkeypatch.undo()
    pytest.importorskip("ray", reason="Ray is installed by make (the cluster extra)")
    with pytest.raises(cluster.ClusterError, match="cannot reach a Ray cluster at 127.0.0.1:9 .*--cluster local"):
        cluster.connect("127.0.0.1:9")

    def one_node_blind(function, argument):
        return [("node-a", function(argument)[1]), ("node-b", None)]

    with pytest.raises(cluster.ClusterError, match=f"{tmp_path} is not visible from worker node\\(s\\) node-b"):
        cluster.check_shared_storage(tmp_path, run_on_nodes=one_node_blind)
    assert not list(tmp_path.iterdir())  # the probe is removed
    cluster.check_shared_storage(tmp_path, run_on_nodes=lambda f, a: [("node-a", f(a)[1])])


def test_cli_cluster_errors_are_one_line(capsys, synth_root, tmp_path):
    args = ["cv", "--root", str(synth_root), "--iterations", "2", "--eval-every", "2", "--no-progress",
            "--out", str(tmp_path / "cv")]
    assert main([*args, "--cluster", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach a Ray cluster at 127.0.0.1:9" in err and "Traceback" not in err
