"""Grids as Ray tasks: every run of ``cv`` and ``reproduce`` on a local Ray instance or on an existing cluster.

    cross_validate(faceset, out, "paper", cluster="local")            # Ray on this machine, all its cores / GPUs
    cross_validate(faceset, out, "paper", cluster="10.0.0.5:6379")    # a running cluster (``ray start --head``)

One run is one task. The FaceSet goes to Ray's object store once and every task reads it from there;
a task asks for one CPU, and on CUDA for ``1 / runs_per_gpu`` of a GPU, so several small runs share a
large GPU. A task whose worker dies (killed, out of memory, its node lost) is run again by Ray and
resumes from the run's ``last.pt``. Every worker must see the run directory at the same path (shared
storage): that is checked on every node before the first task starts.

Without a cluster nothing here runs and Ray is not imported: it is an optional extra
(``pip install -e '.[cluster]'``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from fercore.config import TrainConfig
from fercore.data.faceset import FaceSet
from fercore.execution import Execution
from fercore.progress import tqdm
from fercore.store import run_dir_of

TASK_RETRIES = 3  # times Ray runs a task again after its worker died
CONNECT_TIMEOUT_S = 10  # for reaching a cluster's address before Ray itself tries
RUN_TIMEOUT_S = 24 * 3600  # a grid in which no run finishes for this long is stuck (a paper run on a CPU: ~12 h)
_PROBE = ".fercore-shared-storage-{}"


class ClusterError(RuntimeError):
    """Ray is missing, a cluster cannot be reached, or its workers cannot see the run directory."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("--cluster needs Ray, an optional extra: pip install -e '.[cluster]' "
                           "(or pip install ray)") from None
    return ray


_connected: str | None = None  # the address this process's Ray connection was made for


def connect(address: str) -> None:
    """Start a local Ray instance (``"local"``) or join a running cluster at ``address`` (``host:port``,
    ``ray://host:port`` or ``"auto"``); a second call for the same address reuses the connection."""
    global _connected
    ray = _ray()
    if ray.is_initialized():
        if address == _connected:
            return
        ray.shutdown()
    _connected = None
    if address == "local":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        _connected = address
        return
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host or address, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as error:
            raise ClusterError(f"cannot reach a Ray cluster at {address} ({error}): start one with `ray start "
                               "--head` there, check the address and port, or use --cluster local") from None
    try:
        ray.init(address=address, configure_logging=False, log_to_driver=False)
    except (ConnectionError, RuntimeError) as error:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {error}") from None
    _connected = address


def check_shared_storage(folder: str | os.PathLike, run_on_nodes: Callable | None = None) -> None:
    """Raise ClusterError unless every node of the cluster sees ``folder`` (a token written here is read there).

    Args:
        run_on_nodes: ``(function, argument) -> [(node, result), ...]``, one call per alive node (default: Ray).
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    probe = folder / _PROBE.format(token)
    probe.write_text(token)
    try:
        answers = (run_on_nodes or _run_on_every_node)(_read_token, str(probe))
    finally:
        probe.unlink(missing_ok=True)
    blind = [node for node, seen in answers if seen != token]
    if blind:
        raise ClusterError(f"the run directory {folder} is not visible from worker node(s) {', '.join(blind)}: "
                           "put it on storage every node mounts at the same path (NFS, a shared disk), or pass one "
                           "that is (--runs / --out)")


def _read_token(path: str) -> tuple[str, str | None]:
    """On a node: (its host name, the probe's text or None)."""
    try:
        return socket.gethostname(), Path(path).read_text()
    except OSError:
        return socket.gethostname(), None


def _run_on_every_node(function: Callable, argument) -> list[tuple[str, str | None]]:
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    remote = ray.remote(num_cpus=0)(function)
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    refs = [remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(argument)
            for node in nodes]
    return [tuple(answer) for answer in ray.get(refs, timeout=120)]


def train_grid(faceset: FaceSet, configs: list[TrainConfig], experiment_dir: str | os.PathLike,
               execution: Execution, cluster: str, runs_per_gpu: int = 1, progress: bool = True,
               run_timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Train ``configs`` (the runs not finished yet) as Ray tasks on ``cluster``; returns when all are finished.

    Raises:
        ClusterError: Ray missing, cluster unreachable, run directory not shared, or no run finished for
            ``run_timeout_s`` (the runs finished so far are kept); a run's own error (e.g. FloatingPointError)
            is raised as it was.
    """
    if runs_per_gpu < 1:
        raise ValueError(f"runs_per_gpu must be at least 1, got {runs_per_gpu}")
    connect(cluster)
    ray = _ray()
    check_shared_storage(experiment_dir)
    gpu = execution.torch_device.type == "cuda"
    task = ray.remote(_train_task).options(num_cpus=1, num_gpus=1 / runs_per_gpu if gpu else 0,
                                           max_retries=TASK_RETRIES, retry_exceptions=False)
    shared = ray.put(faceset)  # once, for every task
    runs = {task.remote(shared, config, str(run_dir_of(experiment_dir, config.variant, config.fold)),
                        execution): config for config in configs}
    pending = list(runs)
    with tqdm(total=len(pending), desc=f"grid on Ray ({cluster})", unit="run", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=run_timeout_s)
            if not done:
                left = ", ".join(f"{runs[r].variant} fold {runs[r].fold}" for r in pending)
                raise ClusterError(f"no run finished in {run_timeout_s:.0f} s; still running: {left}. Finished runs "
                                   "are kept: run the same command again to continue")
            ray.get(done)  # raises a task's error here
            bar.update(len(done))


def _train_task(faceset: FaceSet, config: TrainConfig, run_dir: str, execution: Execution) -> float:
    """One run in a Ray worker, with as many torch threads as CPUs Ray gave the task (so tasks side by side do
    not oversubscribe the cores); resumes from last.pt if a previous attempt died."""
    import ray
    import torch

    from fercore.train import train

    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    return train(faceset, config, run_dir, execution, progress=False).test_accuracy


__all__ = ["ClusterError", "check_shared_storage", "connect", "train_grid"]
