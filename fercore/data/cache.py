"""Cache of built FaceSets, keyed by the loader, its options and the files it read."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from fercore.data.faceset import FaceSet
from fercore.store import cache_dir

CACHE_VERSION = 1  # bump when a loader's output changes for the same input


def tree_fingerprint(paths: list[Path]) -> list:
    """(name, size, mtime) of every file: any change to the user's copy invalidates the cache."""
    out = []
    for p in sorted(paths):
        st = os.stat(p)
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def cached(kind: str, key: dict, build: Callable[[], FaceSet], use_cache: bool = True) -> FaceSet:
    """Return the cached FaceSet for ``key``, building (and caching) it when missing."""
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, kind, key], sort_keys=True, default=str).encode()).hexdigest()
    path = cache_dir() / f"{kind}-{digest[:20]}.npz"
    if use_cache and path.exists():
        try:
            return FaceSet.load(path)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache entry is rebuilt below
    faceset = build()
    if use_cache:
        faceset.save(path)
    return faceset
