"""Shared fixtures: a private cache dir for every test, tiny CK+ trees, a tiny FaceSet, a tiny SynthFACS tree."""

from __future__ import annotations

import pytest
from builders import make_tiny_faceset, write_ckplus_tree


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path_factory):
    """Never read or write ~/.cache/fercore from tests."""
    monkeypatch.setenv("FERCORE_CACHE", str(tmp_path_factory.mktemp("fercore-cache")))


@pytest.fixture
def make_ckplus_tree(tmp_path):
    """Factory: ``make_ckplus_tree(sequences=None, name="ckplus", **options) -> CKTree`` under tmp_path."""

    def make(sequences=None, name: str = "ckplus", **options):
        return write_ckplus_tree(tmp_path / name, sequences, **options)

    return make


@pytest.fixture
def ckplus_tree(make_ckplus_tree):
    """The default tiny CK+ copy (12 subjects, zip-named folders, every quirk)."""
    return make_ckplus_tree()


@pytest.fixture(scope="session")
def tiny_faceset():
    """72 images of 32x32 in 3 classes over 8 subjects and 4 folds (see ``builders.make_tiny_faceset``)."""
    return make_tiny_faceset()


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A tiny SynthFACS tree (10 subjects, one per fold), written once per session."""
    from fercore.data import synthfacs

    root = tmp_path_factory.mktemp("synth") / "synthfacs"
    synthfacs.write_tree(root, subjects=10, workers=2, progress=False)
    return root
