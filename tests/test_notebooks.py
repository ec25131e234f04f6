"""fercore.notebooks: committed notebooks are clean; execution is bounded in time, retried once when the
kernel dies or a wait times out, and fails with a message that names the notebook and the cell."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest

import fercore.notebooks as notebooks_module
import fercore.reproduce  # noqa: F401  bound to the real functions before a test below patches fercore.notebooks
from fercore.cli import main
from fercore.notebooks import COMMON_PARAMETERS, NotebookFailed, cell_timeout, execute, numbered_notebooks


def test_notebooks_are_committed_clean_and_parameterised():
    assert numbered_notebooks(), "no notebooks found"
    for path in numbered_notebooks():
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
        for name in COMMON_PARAMETERS:
            assert f"{name} = " in tagged[0].source, f"{path.name}: parameter {name} missing"
        assert nb.metadata.kernelspec["name"] == "fercore", f"{path.name} asks for another kernel than fercore's"


def test_every_notebook_ends_with_what_we_found_and_try_this():
    from fercore import findings

    for path in numbered_notebooks():
        nb = nbformat.read(path, as_version=4)
        titles = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source]
        assert titles[-2:] == ["## What we found", "## Try this"], f"{path.name}: {titles[-2:]}"
        assert path.stem in findings.WRITERS
        source = nb.cells[-2].source
        assert source.startswith("findings.show(") and source.endswith(f', "{path.stem}")'), path.name


def test_the_html_copy_loads_nothing_from_the_network(tmp_path):
    import re

    from fercore.reproduce import to_html

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\n$x^2$ and a [link](https://example.org)")])
    nbformat.write(nb, tmp_path / "x.ipynb")
    html = to_html(tmp_path / "x.ipynb").read_text()
    assert "<h1" in html and "https://example.org" in html
    assert not re.findall(r"<script[^>]*\bsrc\s*=", html), re.findall(r"<script[^>]*>", html)
    assert not any(cdn in html for cdn in ("cdnjs", "unpkg", "jsdelivr", "require.js"))


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook with a ``parameters`` cell (``marker``, ``pid_file``) and the given code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(kernelspec={"name": "python3", "language": "python", "display_name": "Python 3"},
                       language_info={"name": "python"})
    parameters = nbformat.v4.new_code_cell('marker = ""\npid_file = ""')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)
    return path


def test_cell_timeout_comes_from_the_profile_or_the_environment(monkeypatch):
    monkeypatch.delenv("FERCORE_CELL_TIMEOUT", raising=False)
    assert cell_timeout("quick") == 3_600 and cell_timeout("paper") == 24 * 3600
    monkeypatch.setenv("FERCORE_CELL_TIMEOUT", "7")
    assert cell_timeout("paper") == 7
    monkeypatch.setenv("FERCORE_CELL_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FERCORE_CELL_TIMEOUT must be a number of seconds"):
        cell_timeout("quick")


@pytest.mark.slow
def test_a_cell_that_runs_too_long_names_the_notebook_and_the_cell(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "07_slow.ipynb", "x = 1", "import time\ntime.sleep(120)", "y = 2")
    start = time.perf_counter()
    with pytest.raises(NotebookFailed) as failed:
        execute(notebook, tmp_path / "out", timeout=2)
    assert time.perf_counter() - start < 60  # two attempts of 2 s each, plus kernel starts
    message = str(failed.value)
    assert "07_slow.ipynb" in message and "'import time'" in message and "timed out after 2 s" in message
    assert "running it once more" in capsys.readouterr().out  # retried once
    assert failed.value.kept == tmp_path / "out" / "07_slow.failed.ipynb" and failed.value.kept.exists()
    assert not (tmp_path / "out" / "07_slow.ipynb").exists()  # no partial result where a complete one belongs


@pytest.mark.slow
def test_a_cell_error_is_not_retried(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "08_error.ipynb", "raise ValueError('bad input in cell 1')")
    with pytest.raises(NotebookFailed, match=r"08_error.ipynb: cell \d+ .*ValueError: bad input in cell 1"):
        execute(notebook, tmp_path / "out", timeout=30)
    assert "once more" not in capsys.readouterr().out


def _kill_kernel_when_ready(pid_file: Path, times: int) -> threading.Thread:
    """kill -9 the kernel that writes its pid to ``pid_file``, ``times`` times (each new kernel once)."""

    def killer():
        killed = set()
        deadline = time.monotonic() + 120
        while len(killed) < times and time.monotonic() < deadline:
            if pid_file.exists() and pid_file.read_text().strip():
                pid = int(pid_file.read_text())
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread


KILLABLE = ("import os, time\nfrom pathlib import Path\nPath(pid_file).write_text(str(os.getpid()))\n"
            "time.sleep(3 if Path(marker).exists() else 60)\nPath(marker).write_text('once')")


@pytest.mark.slow
def test_a_kernel_killed_once_is_run_again(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "09_killed_once.ipynb", KILLABLE, "done = True")
    pid_file = tmp_path / "pid"
    killer = _kill_kernel_when_ready(pid_file, times=1)
    # The first kernel is killed during its 60 s sleep; the marker does not exist yet, so the second
    # attempt sleeps 60 s as well unless the marker is written: write it once the first kernel is dead.
    threading.Thread(target=lambda: (killer.join(), (tmp_path / "marker").write_text("x")), daemon=True).start()
    out = execute(notebook, tmp_path / "out", timeout=300, marker=str(tmp_path / "marker"), pid_file=str(pid_file))
    assert out == tmp_path / "out" / "09_killed_once.ipynb" and out.exists()
    assert "the kernel died" in capsys.readouterr().out


@pytest.mark.slow
def test_reproduce_whose_notebook_kernel_is_killed_twice_stops_and_continues(synth_root, tmp_path, monkeypatch,
                                                                               capsys):
    """kill -9 of the kernel in the middle of a notebook of `fercore reproduce`: a clear message, the finished
    runs and notebooks kept, a non-zero exit; the same command again continues."""
    real = [nb for nb in numbered_notebooks() if nb.name.startswith("02_")]
    killable = write_notebook(tmp_path / "99_killable.ipynb", KILLABLE)
    monkeypatch.setattr(notebooks_module, "numbered_notebooks", lambda folder=None: [*real, killable])
    out, runs, pid_file = tmp_path / "report", tmp_path / "runs", tmp_path / "pid"
    args = ["reproduce", "--root", str(synth_root), "--iterations", "2", "--eval-every", "2", "--notebooks", "02",
            "99", "--out", str(out), "--runs", str(runs), "--no-progress", "--option", "frames=last3"]
    monkeypatch.setenv("FERCORE_CELL_TIMEOUT", "300")

    def parameters(**extra):  # the killable notebook's own parameters reach it through papermill
        return {"marker": str(tmp_path / "marker"), "pid_file": str(pid_file), **extra}

    execute_real = notebooks_module.execute
    monkeypatch.setattr(notebooks_module, "execute",
                        lambda nb, out_dir, timeout, **p: execute_real(
                            nb, out_dir, timeout, **(parameters(**p) if nb == killable else p)))
    killer = _kill_kernel_when_ready(pid_file, times=2)
    assert main(args) == 3
    killer.join(timeout=5)
    err = capsys.readouterr().err
    assert "99_killable.ipynb" in err and "the kernel died" in err and "run the same command again" in err
    assert len(list(runs.glob("**/result.json"))) == 24  # the whole grid is kept
    assert (out / "notebooks" / "02_benchmark.ipynb").exists()  # so is the notebook that finished

    (tmp_path / "marker").write_text("x")  # the next kernel is not killed and sleeps 3 s
    pid_file.write_text("")
    assert main(args) == 0
    assert "0 runs trained" in capsys.readouterr().out
    assert (out / "notebooks" / "99_killable.ipynb").exists()
    assert not (out / "notebooks" / "99_killable.failed.ipynb").exists()


def test_reads_names_every_notebook_a_notebook_reads():
    import re

    stems = {nb.stem for nb in numbered_notebooks()}
    for path in numbered_notebooks():
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        reads = set(re.findall(r"""\.read\(["'](\d\d_\w+)["']\)""", source)) - {path.stem}
        assert reads <= stems, f"{path.name} reads {reads - stems}, which is no notebook"
        assert reads == set(notebooks_module.READS.get(path.stem, ())), f"{path.name} reads {sorted(reads)}"
        assert all(read < path.stem for read in reads), f"{path.name} reads a later notebook"
        uses_networks = re.search(r"\.(model|train|trained_folds|collect)\(", source) is not None
        assert uses_networks == (path.stem in notebooks_module.USES_RUNS_OF or path.stem == "01_training"), path.name
        assert all(first < path.stem for first in notebooks_module.USES_RUNS_OF.get(path.stem, ())), path.name


STEMS = ("00_datasets", "01_training", "02_benchmark", "03_neuron_visualization", "04_fau_analysis",
         "05_architectures")


def _fake_notebooks(tmp_path, monkeypatch, fail: str | None = None) -> list[tuple]:
    """Notebooks 00-05 whose execution only records (stem, event, time, OMP_NUM_THREADS) and sleeps briefly."""
    paths = [tmp_path / f"{stem}.ipynb" for stem in STEMS]
    events, lock = [], threading.Lock()

    def execute_fake(notebook, out_dir, timeout, **parameters):
        with lock:
            events.append((notebook.stem, "start", time.monotonic(), os.environ.get("OMP_NUM_THREADS")))
        time.sleep(0.3 if notebook.stem.startswith("05") else 0.1)
        with lock:
            events.append((notebook.stem, "end", time.monotonic(), None))
        if notebook.stem == fail:
            raise NotebookFailed(notebook, 3, "x = 1", "ValueError: bad", None)
        return Path(out_dir) / notebook.name

    monkeypatch.setattr(notebooks_module, "numbered_notebooks", lambda folder=None: paths)
    monkeypatch.setattr(notebooks_module, "execute", execute_fake)
    monkeypatch.setattr(notebooks_module.os, "cpu_count", lambda: 4)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    return events


def test_notebooks_side_by_side_start_after_what_they_read(tmp_path, monkeypatch):
    events = _fake_notebooks(tmp_path, monkeypatch)
    done = notebooks_module.execute_all(tmp_path / "runs", workers=2, runs_trained=True)  # as `reproduce` runs them
    assert [p.stem for p in done] == list(STEMS)
    at = {(stem, event): t for stem, event, t, _ in events}
    for reader, reads in {"01_training": "00_datasets", "02_benchmark": "00_datasets"}.items():
        assert at[(reader, "start")] >= at[(reads, "end")]
    assert at[("04_fau_analysis", "start")] < at[("05_architectures", "end")]  # two at once, the last notebooks first
    assert {threads for *_, threads in events if threads} == {"2"}  # 4 cores, 2 kernels: 2 torch threads each
    assert os.environ["OMP_NUM_THREADS"] == "7"  # put back
    first_two = [stem for stem, event, *_ in events if event == "start"][:2]
    assert sorted(first_two) == ["04_fau_analysis", "05_architectures"]


def test_notebooks_side_by_side_wait_for_the_networks_they_use_when_not_trained_yet(tmp_path, monkeypatch):
    events = _fake_notebooks(tmp_path, monkeypatch)
    done = notebooks_module.execute_all(tmp_path / "runs", workers=2)  # an empty run directory
    assert [p.stem for p in done] == list(STEMS)
    at = {(stem, event): t for stem, event, t, _ in events}
    for user, trainers in notebooks_module.USES_RUNS_OF.items():
        assert all(at[(user, "start")] >= at[(trainer, "end")] for trainer in trainers), user
    assert at[("03_neuron_visualization", "start")] < at[("05_architectures", "end")]  # still two at once
    # notebook 02 trains what notebook 04 waits for: of those ready after notebook 01 it starts first (beside 05)
    assert at[("02_benchmark", "start")] < at[("03_neuron_visualization", "start")]


def test_the_last_notebook_alone_gets_every_core(tmp_path, monkeypatch):
    events = _fake_notebooks(tmp_path, monkeypatch)
    notebooks_module.execute_all(tmp_path / "runs", workers=2, only=["02", "04"])  # 04 waits for 02's networks
    threads = {stem: n for stem, event, _, n in events if event == "start"}
    assert threads == {"02_benchmark": "2", "04_fau_analysis": "4"}  # 4 cores: half while others may start
    assert os.environ["OMP_NUM_THREADS"] == "7"  # put back


def test_a_failed_notebook_beside_others_stops_the_rest_and_names_itself(tmp_path, monkeypatch):
    events = _fake_notebooks(tmp_path, monkeypatch, fail="04_fau_analysis")
    with pytest.raises(NotebookFailed, match="04_fau_analysis.ipynb: cell 3"):
        notebooks_module.execute_all(tmp_path / "runs", workers=2, runs_trained=True)
    started = [stem for stem, event, *_ in events if event == "start"]
    ended = [stem for stem, event, *_ in events if event == "end"]
    # nothing more started; the one beside finished
    assert sorted(started) == sorted(ended) == ["04_fau_analysis", "05_architectures"]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        notebooks_module.execute_all(tmp_path / "runs", workers=0)
