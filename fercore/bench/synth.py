"""``fercore bench synth``: how fast SynthFACS is written (render + PNG + text files), and rendering alone."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from fercore.data import synthfacs


def bench_synth(subjects: int = 120, workers: int | None = None) -> dict:
    """Frames per second of writing a SynthFACS tree (render + PNG + text files), and of rendering alone."""
    workers = workers or os.cpu_count() or 1
    identity = synthfacs.identity_of(0, 0)
    n = 50
    start = time.perf_counter()
    for k in range(n):
        synthfacs.render_face(identity, {"AU6": 3, "AU12": 4, "AU25": 2}, seed=k)
    render_fps = n / (time.perf_counter() - start)

    tmp = Path(tempfile.mkdtemp(prefix="fercore-bench-"))
    try:
        start = time.perf_counter()
        root = synthfacs.write_tree(tmp / "synthfacs", subjects=subjects, workers=workers)
        seconds = time.perf_counter() - start
        frames = len(synthfacs.read_truth(root))
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"subjects": subjects, "frames": frames, "workers": workers, "seconds": round(seconds, 1),
              "frames_per_s": round(frames / seconds, 1), "render_only_frames_per_s_1core": round(render_fps, 1),
              "megabytes": round(size / 1e6)}
    print(f"SynthFACS tree: {subjects} subjects, {frames} frames of 640x490 in {seconds:.1f} s "
          f"with {workers} workers = {frames / seconds:.1f} frames/s ({size / 1e6:.0f} MB)")
    print(f"render alone, one core: {render_fps:.1f} frames/s; "
          f"tree writing per core vs render alone: {frames / seconds / workers / render_fps:.2f}")
    return result
