"""The ``fercore`` command: ``fercore synth``, ``fercore info``, ``fercore bench``, ``fercore demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fercore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # Each subcommand module adds its parser and sets `run` (imported lazily: torch is slow to import).
    for add in (_add_synth, _add_info, _add_bench, _add_demo):
        add(sub)
    args = parser.parse_args(argv)
    return args.run(args) or 0


def _add_synth(sub):
    p = sub.add_parser("synth", help="write the built-in SynthFACS dataset as a CK+ tree")
    p.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    p.add_argument("--subjects", type=int, default=120, help="number of identities (default 120, like CK+)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")

    def run(args):
        from fercore.data import synthfacs

        synthfacs.write_tree(args.out, subjects=args.subjects, seed=args.seed, workers=args.workers)
        print(f"wrote SynthFACS ({args.subjects} subjects, seed {args.seed}) to {args.out}")

    p.set_defaults(run=run)


def _add_info(sub):
    p = sub.add_parser("info", help="summarise a dataset copy: images per class, subjects, folds")
    p.add_argument("name", help="dataset name, e.g. ckplus or synthfacs")
    p.add_argument("--root", default=None, help="dataset root folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")

    def run(args):
        from fercore.data.info import print_info

        print_info(args.name, args.root, as_json=args.json)

    p.set_defaults(run=run)


def _add_bench(sub):
    p = sub.add_parser("bench", help="benchmarks (print measured rates and ratios)")
    p.add_argument("what", choices=["synth"])
    p.add_argument("--subjects", type=int, default=120)
    p.add_argument("--workers", type=int, default=None)

    def run(args):
        from fercore import bench

        bench.run(args.what, subjects=args.subjects, workers=args.workers)

    p.set_defaults(run=run)


def _add_demo(sub):
    p = sub.add_parser("demo", help="write SynthFACS (if missing) and execute every notebook on it")
    p.add_argument("--data", default="data/synthfacs", help="SynthFACS folder (written when missing)")
    p.add_argument("--out", default="reports/demo", help="folder for executed notebooks, figures and JSON")
    p.add_argument("--profile", default="quick")
    p.add_argument("--device", default="cpu")

    def run(args):
        from fercore.notebooks import run_demo

        run_demo(args.data, args.out, profile=args.profile, device=args.device)

    p.set_defaults(run=run)


if __name__ == "__main__":
    sys.exit(main())
