"""The README's code runs: "Analyse your own network" on a small SynthFACS tree."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_analyse_your_own_network(synth_root, monkeypatch, capsys):
    section = README.read_text().split("## Analyse your own network", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setenv("FERCORE_DATA", str(synth_root.parent))  # load("synthfacs") reads the small tree
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "features.3" in out and "rf_size" in out
    assert re.search(r"AUs recovered: \d\.\d\d trained, \d\.\d\d random", out)
