"""Execute the numbered notebooks with papermill: ``fercore reproduce`` (``make demo``) and the tests use this."""

from __future__ import annotations

import os
from pathlib import Path

from fercore.paths import repo_root

NOTEBOOK_DIR = (repo_root() or Path.cwd()) / "notebooks"


def notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks (``00_datasets.ipynb``, ``01_training.ipynb``, ...) in order."""
    return sorted(Path(folder or NOTEBOOK_DIR).glob("[0-9][0-9]_*.ipynb"))


def execute(notebook: str | os.PathLike, out_dir: str | os.PathLike, **parameters) -> Path:
    """Run one notebook end to end with papermill; the executed copy goes to ``out_dir``.

    Raises papermill's PapermillExecutionError (naming the failing cell) if a cell fails.
    """
    import papermill

    notebook, out_dir = Path(notebook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                               cwd=str(notebook.parent), progress_bar=False)
    return output


def run_all(run_dir: str | os.PathLike, dataset: str = "synthfacs", data_root: str | None = None,
            profile: str = "quick", device: str = "cpu", seed: int = 0, only: list[str] | None = None,
            out_dir: str | os.PathLike | None = None, extra: dict | None = None) -> list[Path]:
    """Execute every notebook on one dataset and profile; results and figures go to ``run_dir``.

    Args:
        only: name prefixes of the notebooks to run (``["00", "02"]``); None runs them all.
        out_dir: where the executed copies go (default ``run_dir/notebooks``).
        extra: more parameters, each given only to the notebooks whose ``parameters`` cell has it.
    """
    import papermill

    run_dir = Path(run_dir).resolve()
    params = {"dataset": dataset, "data_root": str(Path(data_root).resolve()) if data_root else None,
              "profile": profile, "device": device, "run_dir": str(run_dir), "seed": seed}
    done = []
    for notebook in notebooks():
        if only is not None and not any(notebook.name.startswith(prefix) for prefix in only):
            continue
        declared = papermill.inspect_notebook(str(notebook)) if extra else {}
        own = {k: v for k, v in (extra or {}).items() if k in declared}
        print(f"running {notebook.name} ...", flush=True)
        done.append(execute(notebook, out_dir or run_dir / "notebooks", **params, **own))
    return done


def run_demo(data: str | os.PathLike, out: str | os.PathLike, profile: str = "quick", device: str = "cpu") -> None:
    """``make demo`` / ``fercore demo``: ``fercore reproduce`` on SynthFACS (written when missing)."""
    from fercore.reproduce import print_report, reproduce

    print_report(reproduce("synthfacs", data, profile=profile, device=device, out=out))
