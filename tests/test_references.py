"""fercore.references and the tasks of a protocol (fercore.accuracy.tasks)."""

from __future__ import annotations

from fercore import accuracy, references


def test_one_reference_table_names_its_sources():
    table = references.reference_table()
    assert (table["status"] == "as cited, unconfirmed").all() and table["source"].str.len().gt(20).all()
    assert set(table["task"]) == {"CK+ 8-class", "CK+ 6-class", "TFD"}
    paper = table[table["variant"] == "cnn_ad"]
    assert {"CK+ 8-class", "CK+ 6-class", "TFD"} == set(paper["task"])
    assert [t.label for t in accuracy.tasks("ckplus")] == ["CK+ 8-class", "CK+ 6-class"]
    assert [t.reference for t in accuracy.tasks("tfd")] == ["TFD"]
