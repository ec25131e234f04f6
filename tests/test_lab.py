"""``make lab`` (fercore.lab) and the kernel the notebooks run in (fercore.notebooks.registered_kernel)."""

from __future__ import annotations

import json
import os
import sys

import nbformat

from fercore import lab
from fercore.notebooks import numbered_notebooks, registered_kernel


def test_lab_serves_working_copies_and_never_overwrites_them(tmp_path):
    folder = tmp_path / "lab"
    states = lab.working_copies(folder)
    assert [(c.name, s) for c, s in states] == [(p.name, "new") for p in numbered_notebooks()]
    first = states[0][0]
    nb = nbformat.read(first, as_version=4)
    nb.cells[0].source += "\n\nmy note"
    nbformat.write(nb, first)
    os.utime(first, (1, 1))  # older than the tracked notebook: reported, still kept
    again = dict(lab.working_copies(folder))
    assert again[first] == "stale" and "my note" in first.read_text()
    assert {s for c, s in again.items() if c != first} == {"kept"}


def test_lab_command_allows_root_only_as_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    argv = lab.command(tmp_path, "--no-browser")
    assert argv[:4] == [sys.executable, "-m", "jupyter", "lab"] and "--allow-root" in argv
    assert f"--ServerApp.root_dir={tmp_path}" in argv and argv[-1] == "--no-browser"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in lab.command(tmp_path)


def _register(data_dir, interpreter):
    spec = data_dir / "kernels" / "fercore"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [interpreter, "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "Python (fercore)", "language": "python"}))


def test_the_notebooks_run_in_the_fercore_kernel_or_say_why_not(monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    kernel, problem = registered_kernel()  # make registers it per user (--user): none here
    assert kernel == "python3" and "not registered" in problem and "ipykernel install" in problem
    _register(tmp_path, "/elsewhere/.venv/bin/python")
    kernel, problem = registered_kernel()
    assert kernel == "python3" and "/elsewhere/.venv/bin/python" in problem
    (tmp_path / "kernels" / "fercore" / "kernel.json").unlink()
    (tmp_path / "kernels" / "fercore").rmdir()
    _register(tmp_path, sys.executable)
    assert registered_kernel() == ("fercore", None)
