"""``fercore reproduce``: the protocol's whole grid on a dataset, every notebook on the results, and a report.

    reproduce("ckplus", "~/data/CK+", profile="paper", execution=Execution(device="cuda"))

1. trains every run of the grid that is not finished: the profile's folds x the four variants, for
   every task of the protocol (CK+: 8 and 6 classes; TFD: its 5 folds; ``accuracy.tasks``), into the
   run directory (default ``runs/<profile>-<dataset>``, where the notebooks look by default);
2. executes the notebooks with papermill on that run directory (``notebooks.execute_all``), each
   cell bounded in time;
3. writes the report folder (default ``reports/<profile>-<dataset>``, ``store.ReportFiles``):

    notebooks/NN_name.ipynb   executed notebooks        notebooks/NN_name.html   an HTML copy of each
    figures/*.png             every figure of the study  results/*.json           what each notebook measured
    summary.csv               per task and variant: folds, mean, std over folds, each fold's accuracy
    reproduce.json            the command's settings, runs trained and skipped, the grid's time

Run it again after an interruption: finished runs and notebooks' results are kept, so it continues
where it stopped.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from fercore import accuracy, store
from fercore.execution import Execution
from fercore.models import DEFAULT_ARCH, get_arch
from fercore.notebooks import execute_all, numbered_notebooks


@dataclass
class Report:
    """What ``reproduce`` wrote, and what it trained."""

    out: str  # the report folder
    run_dir: str  # the run directory the grid and the notebooks used
    trained: int  # runs trained by this call
    skipped: int  # runs of the grid that were finished already
    grid_seconds: float  # wall time this call spent training
    training_seconds: float  # training time of every run in the grid (summed over runs, wherever trained)
    notebook_seconds: float = 0.0  # wall time of executing the notebooks
    notebooks: list[str] = field(default_factory=list)  # executed copies
    html: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    summary: str = ""


def reproduce(dataset: str, root: str | os.PathLike | None = None, profile: str = "quick",
              execution: Execution | None = None, out: str | os.PathLike | None = None,
              run_dir: str | os.PathLike | None = None, notebooks: list[str] | None = None, seed: int = 0,
              options: dict | None = None, arch: str = DEFAULT_ARCH, cluster: str | None = None,
              runs_per_gpu: int = 1, progress: bool = True, notebook_workers: int | None = None,
              **overrides) -> Report:
    """Run the grid, execute the notebooks on it and write the report folder.

    Args:
        dataset: loader name ("ckplus", "tfd", "synthfacs", ...).
        root: the dataset folder (default ``data/<dataset>``; SynthFACS is written there when missing).
        profile: "quick" or "paper".
        execution: device, precision, ... for training; the notebooks get its device.
        out: the report folder (default ``reports/<profile>-<dataset>``).
        run_dir: the run directory (default ``runs/<profile>-<dataset>``).
        notebooks: name prefixes of the notebooks to execute (``["00", "02"]``); None: all; []: none.
        seed: seed of every run and notebook.
        options: loader options (``fercore.data.load``) for the grid.
        arch: a registered architecture; its grid and the notebooks' network (the paper's by default).
        cluster, runs_per_gpu: train the grid as Ray tasks, locally ("local") or on a cluster (its address).
        progress: progress bars while training.
        notebook_workers: notebooks executed side by side (``notebooks.execute_all``'s workers); None: 2 where
            there are at least 2 cores.
        **overrides: TrainConfig fields changed for every run (iterations, eval_every, ...): for smoke
            tests; notebook 01 trains with the profile's settings, so it cannot be run with them.

    Returns:
        Report.

    Raises:
        NotebookFailed: a notebook could not be executed (the grid and the notebooks before it are kept).
    """
    check_options(notebooks, overrides)
    execution = (execution or Execution()).resolved(get_arch(arch).cpu_bf16)  # the grid's arch decides "auto"
    report = store.ReportFiles(Path(out or store.default_report_dir(dataset, profile)).resolve())
    run_dir = Path(run_dir or store.default_run_dir(dataset, profile)).resolve()
    report.dir.mkdir(parents=True, exist_ok=True)

    # 1. The grid: every task, every variant, the profile's folds; finished runs are read back.
    start = time.perf_counter()
    collected = accuracy.collect(dataset, root, run_dir, profile, train="all", execution=execution,
                                 options=options, arch=arch, cluster=cluster, runs_per_gpu=runs_per_gpu,
                                 progress=progress, seed=seed, **overrides)
    grid_seconds = time.perf_counter() - start
    trained = sum(t.trained for t in collected)
    total = sum(len(t.runs) for t in collected)
    with store.atomic_path(report.summary) as tmp:
        accuracy.summary_table(collected).to_csv(tmp, index=False)

    # 2. The notebooks, on the finished grid (notebook 02 finds every run finished).
    start = time.perf_counter()
    workers = notebook_workers if notebook_workers is not None else min(2, os.cpu_count() or 1)
    executed = execute_all(run_dir, dataset=dataset, data_root=str(root) if root else None, options=options,
                           profile=profile, device=execution.device, seed=seed, only=notebooks,
                           out_dir=report.notebooks, extra={"overrides": overrides, "arch": arch}, workers=workers,
                           runs_trained=True)
    notebook_seconds = time.perf_counter() - start

    # 3. The report: HTML copies, figures, result files.
    html = [to_html(path) for path in executed]
    figures = _copy(sorted((run_dir / "figures").glob("*.png")), report.figures)
    _copy(sorted(run_dir.glob("*.json")), report.results)
    result = Report(out=str(report.dir), run_dir=str(run_dir), trained=trained, skipped=total - trained,
                    grid_seconds=grid_seconds,
                    training_seconds=float(sum(t.runs["seconds"].sum() for t in collected)),
                    notebook_seconds=notebook_seconds,
                    notebooks=[str(p) for p in executed], html=[str(p) for p in html],
                    figures=[str(p) for p in figures], summary=str(report.summary))
    store.write_json(report.record, {"dataset": dataset, "root": root, "profile": profile, "arch": arch, "seed": seed,
                                     "execution": execution.record(), "options": options or {}, "overrides": overrides,
                                     "notebook_workers": workers,
                                     "tasks": [t.task.label for t in collected], **vars(result)})
    return result


def check_options(notebooks: list[str] | None, overrides: dict) -> None:
    """Refuse overrides when notebook 01 would run: it trains with the profile's own settings into the
    run directory, and a run directory holding another config is refused (ValueError)."""
    chosen = [nb.name for nb in numbered_notebooks()
              if notebooks is None or any(nb.name.startswith(p) for p in notebooks)]
    if overrides and any(name.startswith("01_") for name in chosen):
        raise ValueError(f"overrides {sorted(overrides)} change the runs' config, and notebook 01 trains with the "
                         "profile's own settings into the same run directory: leave notebook 01 out "
                         "(e.g. --notebooks 02) or drop the overrides")


# nbconvert's "lab" template without what it loads from CDNs (require.js, MathJax, Mermaid, the widget renderer):
# the report reads the same offline. Figures are embedded PNGs, and under papermill widgets draw still figures
# (fercore.widgets), so nothing in the page needs a script.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def to_html(notebook: Path) -> Path:
    """A self-contained HTML copy of an executed notebook, beside it (nbconvert's HTMLExporter with the lab
    template less its CDN scripts; images embedded): it reads the same without a network."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({"fercore_offline.html.j2": OFFLINE_TEMPLATE})],
                            template_file="fercore_offline.html.j2")
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return store.write_text(notebook.with_suffix(".html"), body)


def _copy(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for file in files:
        copy = folder / file.name
        if copy.resolve() != file.resolve():
            with store.atomic_path(copy) as tmp:
                shutil.copy2(file, tmp)
        copies.append(copy)
    return copies


def print_report(report: Report) -> None:
    """What a user reads at the end of ``fercore reproduce``."""
    print(f"\ngrid: {report.trained} runs trained ({report.grid_seconds:.0f} s), {report.skipped} finished before; "
          f"{report.training_seconds:.0f} s of training in all; runs in {report.run_dir}")
    print(f"notebooks: {len(report.notebooks)} executed ({report.notebook_seconds:.0f} s)")
    print(f"report in {report.out}:")
    for path in report.notebooks:
        print(f"  {Path(path).relative_to(report.out)} (+ .html)")
    files = store.ReportFiles(Path(report.out))
    print(f"  figures/ ({len(report.figures)} PNG), results/ (JSON), {files.summary.name}, {files.record.name}")


__all__ = ["Report", "check_options", "print_report", "reproduce"]
