"""fercore.progress: text bars outside a kernel; the front-end decision and its override."""

from __future__ import annotations

from fercore import progress


def test_outside_a_kernel_bars_are_text_and_no_front_end(monkeypatch):
    monkeypatch.delenv("FERCORE_WIDGETS", raising=False)
    assert not progress.in_kernel() and not progress.frontend_connected()
    bar = progress.tqdm(range(3), disable=False)
    assert type(bar).__module__ == "tqdm.std" and not bar.disable
    assert list(bar) == [0, 1, 2]
    monkeypatch.setenv("FERCORE_WIDGETS", "live")
    assert progress.frontend_connected()
    monkeypatch.setenv("FERCORE_WIDGETS", "static")
    assert not progress.frontend_connected()
