"""Soak: ``fercore reproduce`` on a small SynthFACS tree, several times in a row, each run bounded in time.

    .venv/bin/python tests/notebooks/soak_reproduce.py --times 10

The first run trains the grid (a few steps per run) and every run executes notebooks 00, 02, 03 and 04
on it (01 trains with the profile's own settings, so it is left out of a run with overrides). Prints
each run's wall time; exits non-zero when a run fails or outlives ``--limit`` seconds (a hang).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--limit", type=int, default=900, help="seconds one run may take before it counts as a hang")
    parser.add_argument("--subjects", type=int, default=20)
    args = parser.parse_args()
    fercore = [sys.executable, "-m", "fercore.cli"]
    with tempfile.TemporaryDirectory(prefix="fercore-soak-") as tmp:
        root = Path(tmp) / "synthfacs"
        subprocess.run([*fercore, "synth", "--out", str(root), "--subjects", str(args.subjects)], check=True,
                       capture_output=True, timeout=args.limit)
        command = [*fercore, "reproduce", "--root", str(root), "--iterations", "30", "--eval-every", "10",
                   "--notebooks", "00", "02", "03", "04", "--out", f"{tmp}/report", "--runs", f"{tmp}/runs",
                   "--no-progress"]
        times = []
        for k in range(args.times):
            start = time.perf_counter()
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.limit)
            except subprocess.TimeoutExpired:
                print(f"run {k + 1}: no result after {args.limit} s: a hang", flush=True)
                return 1
            times.append(time.perf_counter() - start)
            print(f"run {k + 1}: exit {done.returncode}, {times[-1]:.1f} s", flush=True)
            if done.returncode:
                print(done.stderr[-3000:])
                return 1
        print("wall times (s): " + ", ".join(f"{t:.1f}" for t in times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
