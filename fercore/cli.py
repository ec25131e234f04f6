"""The ``fercore`` command: ``synth``, ``info``, ``train``, ``cv``, ``reproduce``, ``bench``, ``demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fercore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # Each subcommand module adds its parser and sets `run` (imported lazily: torch is slow to import).
    for add in (_add_synth, _add_info, _add_train, _add_cv, _add_reproduce, _add_bench, _add_demo):
        add(sub)
    args = parser.parse_args(argv)
    from fercore.data.common import DatasetFormatError

    try:
        return args.run(args) or 0
    except (DatasetFormatError, FileExistsError, FileNotFoundError) as error:
        # A damaged or missing dataset is the user's to fix: say what is wrong, without a traceback.
        print(f"fercore {args.command}: {error}", file=sys.stderr)
        return 2


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


def _add_run_options(p, out_help: str):
    """Options shared by ``train`` and ``cv``: dataset, profile, device, seed and profile overrides."""
    p.add_argument("--dataset", default="synthfacs", help="dataset name (default synthfacs)")
    p.add_argument("--root", default=None, help="dataset folder (default data/<dataset>)")
    p.add_argument("--profile", default="quick", choices=["quick", "paper"])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=None, help="override the profile's number of steps")
    p.add_argument("--eval-every", type=int, default=None, help="override the profile's validation interval")
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _overrides(args) -> dict:
    given = {"iterations": args.iterations, "eval_every": args.eval_every}
    return {"device": args.device, "seed": args.seed, **{k: v for k, v in given.items() if v is not None}}


def _add_train(sub):
    p = sub.add_parser("train", help="train one variant on one fold (resumes an interrupted run)")
    p.add_argument("--variant", default="cnn_ad", choices=["cnn", "cnn_a", "cnn_d", "cnn_ad"])
    p.add_argument("--fold", type=int, default=0)
    _add_run_options(p, "run directory (default runs/<profile>-<dataset>/<variant>/fold<k>)")

    def run(args):
        from fercore.data import load
        from fercore.experiment import run_dir_of
        from fercore.results import default_run_dir
        from fercore.train import TrainConfig, train

        faceset = load(args.dataset, args.root)
        config = TrainConfig.from_profile(args.profile, dataset=args.dataset, variant=args.variant,
                                          fold=args.fold, **_overrides(args))
        out = args.out or run_dir_of(default_run_dir(args.dataset, args.profile), args.variant, args.fold)
        result = train(faceset, config, out, progress=not args.no_progress)
        print(f"{args.variant} fold {args.fold}: test accuracy {result.test_accuracy:.1%} (checkpoint of "
              f"iteration {result.best_iteration}, validation {result.best_val_accuracy:.1%}), "
              f"{result.seconds:.0f} s, {result.images_per_s:.0f} images/s; run directory {out}")

    p.set_defaults(run=run)


def _add_cv(sub):
    p = sub.add_parser("cv", help="cross-validation over folds x variants (skips finished runs)")
    p.add_argument("--variants", nargs="+", default=None, choices=["cnn", "cnn_a", "cnn_d", "cnn_ad"],
                   help="default: the profile's (all four)")
    p.add_argument("--folds", nargs="+", type=int, default=None, help="default: the profile's")
    _add_run_options(p, "experiment folder (default runs/<profile>-<dataset>)")

    def run(args):
        import pandas as pd

        from fercore.data import load
        from fercore.experiment import cross_validate, summarize
        from fercore.results import default_run_dir

        faceset = load(args.dataset, args.root)
        out = args.out or default_run_dir(args.dataset, args.profile)
        runs = cross_validate(faceset, out, args.profile, args.variants, args.folds,
                              progress=not args.no_progress, dataset=args.dataset, **_overrides(args))
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 160):
            print(summarize(runs).to_string(index=False))
        print(f"test accuracy per variant over {runs.fold.nunique()} folds; runs and summary.csv in {out}")

    p.set_defaults(run=run)


def _add_reproduce(sub):
    p = sub.add_parser("reproduce", help="the protocol's whole grid, every notebook on it, and a report folder")
    _add_run_options(p, "report folder (default reports/<profile>-<dataset>)")
    p.add_argument("--runs", default=None, help="run directory (default runs/<profile>-<dataset>)")
    p.add_argument("--notebooks", nargs="*", default=None, metavar="PREFIX",
                   help="execute only these notebooks (e.g. 00 02); alone: none (default: all)")

    def run(args):
        from fercore.reproduce import check_options, print_report, reproduce

        overrides = _overrides(args)
        device, seed = overrides.pop("device"), overrides.pop("seed")
        try:
            check_options(args.notebooks, overrides)
        except ValueError as error:  # overrides with notebook 01: say what to change, without a traceback
            print(f"fercore reproduce: {error}", file=sys.stderr)
            return 2
        report = reproduce(args.dataset, args.root, args.profile, device, out=args.out, run_dir=args.runs,
                           notebooks=args.notebooks, seed=seed, progress=not args.no_progress, **overrides)
        print_report(report)

    p.set_defaults(run=run)


def _add_bench(sub):
    p = sub.add_parser("bench", help="benchmarks (print measured rates and ratios)")
    p.add_argument("what", choices=["synth", "train", "load", "mine", "realism"])
    p.add_argument("--root", default=None, help="realism: CK+-layout tree to score (default data/synthfacs)")
    p.add_argument("--subjects", type=int, default=120, help="synth: number of identities")
    p.add_argument("--workers", type=int, default=None, help="synth: processes")
    p.add_argument("--device", default="cpu", help="train: cpu, cuda, ...")
    p.add_argument("--profile", default="paper", choices=["quick", "paper"],
                   help="train: model size and batch of this profile (default paper: 96x96, width 1, batch 64)")
    p.add_argument("--steps", type=int, default=None, help="train: timed steps per pipeline")

    def run(args):
        from fercore import bench

        if args.what == "synth":
            bench.run("synth", subjects=args.subjects, workers=args.workers)
        elif args.what == "train":
            bench.run("train", device=args.device, profile=args.profile, steps=args.steps)
        elif args.what == "realism":
            from fercore.data.synthfacs.realism import FerWeightsMissing, print_realism, realism

            try:
                print_realism(realism(args.root))
            except FerWeightsMissing as error:
                print(f"fercore bench realism: {error}", file=sys.stderr)
                return 2
        elif args.what == "mine":
            bench.run("mine", device=args.device, profile=args.profile)
        else:
            bench.run("load")

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
