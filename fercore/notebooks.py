"""Execute the numbered notebooks with papermill, with a bound on every wait.

Every execution has a kernel start timeout and a per-cell timeout (the profile's
``cell_timeout_s``; the environment variable ``FERCORE_CELL_TIMEOUT``, in seconds, overrides it for
every notebook fercore executes). A notebook whose kernel died or timed out is run once more;
if it fails again, or a cell raises, ``NotebookFailed`` names the notebook, the cell and the
reason. An executed notebook is written as ``.<name>.partial.ipynb`` and renamed into place only
when complete; a failed one is kept as ``<name>.failed.ipynb`` to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fercore import store
from fercore.config import get_profile
from fercore.progress import SESSION_VARIABLE

KERNEL_START_TIMEOUT_S = 120  # a kernel that has not answered by then is dead or stuck
KERNEL = "fercore"  # the project's kernel ("Python (fercore)"), which make registers for .venv's interpreter
FALLBACK_KERNEL = "python3"  # ipykernel's native kernel spec: the interpreter running fercore
_warned: set[str] = set()
COMMON_PARAMETERS = ("dataset", "data_root", "options", "profile", "device", "run_dir", "seed")
# The notebooks each notebook reads the results of (``study.read``): it starts after them when notebooks run side by
# side. tests/test_notebooks.py checks this against the notebooks' sources.
READS = {"01_training": ("00_datasets",), "02_benchmark": ("00_datasets",)}
# The notebooks that train the networks a notebook uses (notebook 01 trains cnn_ad on fold 0, notebook 02 the rest of
# the grid). Where those runs are not finished before (``execute_all``'s ``runs_trained``), a notebook also waits for
# them: it would otherwise find no network, or train the same run as the notebook beside it.
USES_RUNS_OF = {"02_benchmark": ("01_training",), "03_neuron_visualization": ("01_training",),
                "04_fau_analysis": ("01_training", "02_benchmark"), "05_architectures": ("01_training",)}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch's threads in a kernel, read when it starts


class NotebookFailed(RuntimeError):
    """A notebook could not be executed to the end; the message names the notebook, the cell and why."""

    def __init__(self, notebook: Path, cell: int | None, source: str, reason: str, kept: Path | None):
        self.notebook, self.cell, self.source, self.reason, self.kept = notebook, cell, source, reason, kept
        where = f"cell {cell} ({source!r})" if cell is not None else "before any cell ran"
        see = f"; the partly executed notebook is {kept}" if kept else ""
        super().__init__(f"{notebook.name}: {where}: {reason}{see}")


def registered_kernel() -> tuple[str, str | None]:
    """The kernel to run the notebooks in, and why not the project's when it is not.

    Returns:
        ("fercore", None) when the kernel spec ``fercore`` runs this interpreter (the one running fercore);
        otherwise ("python3", the reason: not registered, or registered for another interpreter), ipykernel's native
        spec for this interpreter, so the notebooks still run with this fercore.
    """
    import sys

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    register = (f"`make` registers it, or: {sys.executable} -m ipykernel install --user --name {KERNEL} "
                f"--display-name 'Python (fercore)'")
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return FALLBACK_KERNEL, f"the Jupyter kernel '{KERNEL}' is not registered ({register})"
    interpreter = spec.argv[0] if spec.argv else ""
    if os.path.dirname(os.path.abspath(interpreter)) != os.path.dirname(os.path.abspath(sys.executable)):
        return FALLBACK_KERNEL, (f"the Jupyter kernel '{KERNEL}' runs {interpreter}, not this interpreter "
                                 f"({sys.executable}); to register it for this one: {register}")
    return KERNEL, None


def numbered_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks (``00_datasets.ipynb``, ``01_training.ipynb``, ...) in order."""
    return sorted(Path(folder or store.notebook_dir()).glob("[0-9][0-9]_*.ipynb"))


def cell_timeout(profile: str) -> int:
    """Seconds a cell may run: ``$FERCORE_CELL_TIMEOUT`` if set, else the profile's ``cell_timeout_s``."""
    value = os.environ.get("FERCORE_CELL_TIMEOUT")
    if value is None:
        return get_profile(profile).cell_timeout_s
    try:
        seconds = int(float(value))
    except ValueError:
        raise ValueError(f"FERCORE_CELL_TIMEOUT must be a number of seconds, got {value!r}") from None
    if seconds < 1:
        raise ValueError(f"FERCORE_CELL_TIMEOUT must be at least 1 second, got {value!r}")
    return seconds


def execute(notebook: str | os.PathLike, out_dir: str | os.PathLike, timeout: int, retries: int = 1,
            **parameters) -> Path:
    """Run one notebook end to end with papermill; the executed copy goes to ``out_dir``.

    Args:
        timeout: seconds each cell may run.
        retries: further attempts when the kernel dies or a wait times out (a cell that raises is not retried:
            it would raise again).
        **parameters: values for the notebook's ``parameters`` cell.

    Raises:
        NotebookFailed: naming the notebook, the cell and the reason.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    notebook, out_dir = Path(notebook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output, partial, failed = (out_dir / notebook.name, out_dir / f".{notebook.stem}.partial.ipynb",
                               out_dir / f"{notebook.stem}.failed.ipynb")
    kernel, problem = registered_kernel()
    if problem and problem not in _warned:
        _warned.add(problem)
        print(f"note: {problem}. Running the notebooks in '{kernel}' (this interpreter) instead.", flush=True)
    attempt = 0
    while True:
        try:
            with _without_front_end():
                papermill.execute_notebook(str(notebook), str(partial), parameters=parameters, kernel_name=kernel,
                                           cwd=str(notebook.parent), progress_bar=False,
                                           start_timeout=KERNEL_START_TIMEOUT_S, execution_timeout=timeout)
            os.replace(partial, output)
            failed.unlink(missing_ok=True)
            return output
        except PapermillExecutionError as error:  # a cell raised: the notebook's own failure
            reason = f"{error.ename}: {error.evalue}"
            retry = False
        except CellTimeoutError:
            reason, retry = f"timed out after {timeout} s (FERCORE_CELL_TIMEOUT sets the limit)", True
        except DeadKernelError:
            reason, retry = "the kernel died (killed, or out of memory)", True
        except RuntimeError as error:  # jupyter_client: the kernel did not start or answer in time
            if "Kernel" not in str(error) and "kernel" not in str(error):
                raise
            reason, retry = f"the kernel did not start: {error}", True
        cell, source = _last_started_cell(partial)
        if retry and attempt < retries:
            attempt += 1
            print(f"{notebook.name}: cell {cell}: {reason}; running it once more", flush=True)
            continue
        kept = None
        if partial.exists():
            os.replace(partial, failed)
            kept = failed
        raise NotebookFailed(notebook, cell, source, reason, kept) from None


def _without_front_end():
    """Start kernels without the variable that tells fercore a Jupyter front-end is connected (``fercore.progress``):
    set when fercore itself runs in a notebook's kernel, it would make the executed notebook's widgets live."""
    return _environment({SESSION_VARIABLE: None})


def _last_started_cell(executed: Path) -> tuple[int | None, str]:
    """(index, first source line) of the last cell papermill started in a partly executed notebook."""
    import nbformat

    if not executed.exists():
        return None, ""
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # a notebook cut short mid-write: the cell is unknown, the reason still stands
        return None, ""
    started = [k for k, c in enumerate(nb.cells) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return None, ""
    lines = nb.cells[started[-1]].source.strip().splitlines()
    return started[-1], lines[0] if lines else ""


def execute_all(run_dir: str | os.PathLike, dataset: str = "synthfacs", data_root: str | None = None,
                options: dict | None = None, profile: str = "quick", device: str = "cpu", seed: int = 0,
                only: list[str] | None = None, out_dir: str | os.PathLike | None = None,
                extra: dict | None = None, workers: int = 1, runs_trained: bool = False) -> list[Path]:
    """Execute every notebook on one dataset and profile; results and figures go to ``run_dir``.

    With ``workers`` > 1 that many kernels run side by side, each with cores // workers torch threads (on 2 cores,
    two one-thread kernels finish the quick notebooks in 0.6x the time of one two-thread kernel: much of a
    notebook is single-threaded Python); a notebook starts once those it reads (``READS``) are done, and those
    that train its networks (``USES_RUNS_OF``) unless ``runs_trained``. Of the notebooks ready, those that train
    networks others wait for start first, then later notebooks before earlier ones (they train networks of their
    own: the longest). The last notebook to start, when none runs beside it, gets every core. Torch's results
    depend on its number of threads, so a network trained in a notebook is another sample of the same training
    than with another ``workers``.

    Stops at the first notebook that fails (``NotebookFailed``); the notebooks executed before it stay (and those
    running beside it finish).

    Args:
        only: name prefixes of the notebooks to run (``["00", "02"]``); None runs them all.
        out_dir: where the executed copies go (default ``run_dir/notebooks``).
        options: loader options of the dataset (``fercore.data.load``).
        extra: more parameters, each given only to the notebooks whose ``parameters`` cell has it.
        workers: kernels side by side (1: one notebook after the other, in order).
        runs_trained: the grid's runs (those notebooks 01 and 02 train) are finished in ``run_dir`` already, as
            ``fercore reproduce`` trains them first: no notebook waits for another to train them.

    Returns:
        The executed copies, in the notebooks' order.
    """
    import papermill

    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    run_dir = Path(run_dir).resolve()
    params = {"dataset": dataset, "data_root": str(Path(data_root).resolve()) if data_root else None,
              "options": options or {}, "profile": profile, "device": device, "run_dir": str(run_dir), "seed": seed}
    timeout = cell_timeout(profile)
    chosen = [nb for nb in numbered_notebooks()
              if only is None or any(nb.name.startswith(prefix) for prefix in only)]

    def run(notebook: Path) -> Path:
        declared = papermill.inspect_notebook(str(notebook)) if extra else {}
        own = {k: v for k, v in (extra or {}).items() if k in declared}
        print(f"running {notebook.name} (cells may take up to {timeout} s each) ...", flush=True)
        return execute(notebook, out_dir or run_dir / "notebooks", timeout, **params, **own)

    if workers <= 1 or len(chosen) <= 1:
        return [run(notebook) for notebook in chosen]
    threads = max(1, (os.cpu_count() or 1) // workers)
    # The front-end variable is unset here for the whole run, not only by each execute(): kernels start from
    # several threads, and their own unset-and-restore would race on it.
    with _environment({SESSION_VARIABLE: None, **{name: str(threads) for name in _THREAD_VARIABLES}}):
        uses_runs = {} if runs_trained else USES_RUNS_OF
        after = {nb.stem: READS.get(nb.stem, ()) + uses_runs.get(nb.stem, ()) for nb in chosen}
        trainers = {stem for stems in uses_runs.values() for stem in stems}
        priority = sorted(reversed(chosen), key=lambda nb: nb.stem not in trainers)  # stable: later ones first
        done = _side_by_side(priority, run, workers, after)
    return [done[nb.stem] for nb in chosen if nb.stem in done]


def _side_by_side(notebooks: list[Path], run, workers: int, after: dict[str, tuple[str, ...]]) -> dict[str, Path]:
    """Run ``run(notebook)`` in ``workers`` threads, each notebook after the chosen ones that ``after`` names for it,
    the first ready in ``notebooks``' order first; {stem: executed copy}. Every wait is bounded by the notebooks'
    own kernel start and cell timeouts."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    stems = {nb.stem for nb in notebooks}
    waiting = list(notebooks)
    done: dict[str, Path] = {}
    running: dict = {}
    failure: NotebookFailed | None = None
    with ThreadPoolExecutor(workers) as pool:
        while running or (waiting and failure is None):
            for notebook in list(waiting):
                ready = all(first in done for first in after.get(notebook.stem, ()) if first in stems)
                if ready and failure is None and len(running) < workers:
                    waiting.remove(notebook)
                    if not running and not waiting:  # nothing beside it from now on: every core (the kernels before
                        # it have started, and the caller's _environment puts the variables back at the end)
                        os.environ.update({name: str(os.cpu_count() or 1) for name in _THREAD_VARIABLES})
                    running[pool.submit(run, notebook)] = notebook
            if not running:
                raise RuntimeError(f"a cycle: {[nb.stem for nb in waiting]} wait on each other")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                notebook = running.pop(future)
                try:
                    done[notebook.stem] = future.result()
                except NotebookFailed as error:
                    failure = failure or error
    if failure is not None:
        raise failure
    return done


@contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set environment variables (None: unset), which kernels started meanwhile inherit; put back what was there."""
    before = {name: os.environ.get(name) for name in values}

    def apply(settings: dict[str, str | None]) -> None:
        for name, value in settings.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(values)
    try:
        yield
    finally:
        apply(before)


__all__ = ["KERNEL_START_TIMEOUT_S", "READS", "USES_RUNS_OF", "NotebookFailed", "cell_timeout", "execute",
           "execute_all", "numbered_notebooks"]
