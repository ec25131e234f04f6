"""Execute the numbered notebooks with papermill: ``make demo``, ``fercore demo`` and the tests use this."""

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
            profile: str = "quick", device: str = "cpu", seed: int = 0, only: list[str] | None = None) -> list[Path]:
    """Execute every notebook on one dataset and profile; results, figures and executed copies go to ``run_dir``."""
    run_dir = Path(run_dir).resolve()
    params = {"dataset": dataset, "data_root": str(Path(data_root).resolve()) if data_root else None,
              "profile": profile, "device": device, "run_dir": str(run_dir), "seed": seed}
    done = []
    for notebook in notebooks():
        if only and not any(notebook.name.startswith(prefix) for prefix in only):
            continue
        print(f"running {notebook.name} ...", flush=True)
        done.append(execute(notebook, run_dir / "notebooks", **params))
    return done


def run_demo(data: str | os.PathLike, out: str | os.PathLike, profile: str = "quick", device: str = "cpu") -> None:
    """``make demo``: SynthFACS (written when missing), then every notebook on it."""
    from fercore.data import load

    load("synthfacs", data)  # writes the tree on first use, and fills the loader cache
    executed = run_all(out, dataset="synthfacs", data_root=str(data), profile=profile, device=device)
    out = Path(out).resolve()
    print("\nexecuted notebooks:")
    for path in executed:
        print(f"  {path}")
    print(f"figures: {out / 'figures'}")
    print(f"results (JSON): {out}")
