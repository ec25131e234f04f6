"""``make lab``: JupyterLab on working copies of the notebooks, in the project's kernel, as root or as a user.

    python -m fercore.lab [jupyter lab options...]      # what `make lab` runs

JupyterLab saves a notebook's outputs into the file it opened (autosave, every two minutes). So the tracked
notebooks (``notebooks/``, committed without outputs: ``tests/test_notebooks.py`` checks) are never opened:
``lab/`` (ignored by git) holds a working copy of each, made when missing and never overwritten, so a student's
edits and outputs stay theirs and ``make test`` stays green. A tracked notebook that changed after its copy was
made is reported (delete the copy to get the new one). Every notebook asks for the kernel ``fercore``
("Python (fercore)", this venv's interpreter), which ``make`` registers; ``--allow-root`` is added when running as
root (containers, cloud notebooks), where Jupyter otherwise refuses to start.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from fercore import store
from fercore.notebooks import numbered_notebooks


def lab_dir() -> Path:
    """``lab/`` of the checkout (else of the working directory): the working copies JupyterLab opens."""
    return (store.repo_root() or Path.cwd()) / "lab"


def working_copies(folder: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """A copy of each tracked notebook in ``folder`` (default ``lab/``), made only where missing.

    Returns:
        (copy, state) per notebook: state "new" (just copied), "kept" (the copy is there and the tracked notebook
        is not newer) or "stale" (kept, but the tracked notebook changed since: delete the copy to get it).
    """
    folder = Path(folder or lab_dir())
    folder.mkdir(parents=True, exist_ok=True)
    states = []
    for tracked in numbered_notebooks():
        copy = folder / tracked.name
        if not copy.exists():
            shutil.copy2(tracked, copy)
            states.append((copy, "new"))
        else:
            states.append((copy, "stale" if tracked.stat().st_mtime > copy.stat().st_mtime + 1 else "kept"))
    return states


def command(folder: str | os.PathLike, *extra: str) -> list[str]:
    """The ``jupyter lab`` command line serving ``folder`` from this interpreter's environment; ``--allow-root``
    when the effective user is root."""
    argv = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={Path(folder)}",
            "--MappingKernelManager.default_kernel_name=fercore"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    return [*argv, *extra]


def main(argv: list[str] | None = None) -> int:
    from fercore.notebooks import registered_kernel

    extra = list(sys.argv[1:] if argv is None else argv)
    folder = lab_dir()
    for copy, state in working_copies(folder):
        if state == "stale":
            print(f"{copy.relative_to(folder.parent)}: kept your copy; notebooks/{copy.name} changed since it was "
                  "made (delete the copy to get the new one)")
    print(f"JupyterLab on {folder} (working copies, ignored by git: the tracked notebooks/ stay clean)")
    problem = registered_kernel()[1]
    if problem:
        print(f"warning: {problem}. The notebooks ask for it: JupyterLab will ask you to pick a kernel.",
              file=sys.stderr)
    argv = command(folder, *extra)
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
