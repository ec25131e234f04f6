"""The ``fercore`` command: ``synth``, ``info``, ``archs``, ``train``, ``cv``, ``reproduce``, ``demo``, ``bench``.

Exit codes: 0 done; 2 a problem with the input (dataset, run directory, options: the message says
which file or field); 3 a notebook could not be executed (the message names the notebook and cell).
"""

from __future__ import annotations

import argparse
import ast
import sys


class _InputError(Exception):
    """A problem with what the user gave; printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fercore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    # Each subcommand adds its parser and sets `run`; heavy modules are imported inside `run` (torch is slow to import).
    for add in (_add_synth, _add_info, _add_archs, _add_train, _add_cv, _add_reproduce, _add_demo, _add_bench):
        add(sub)
    args = parser.parse_args(argv)
    from fercore.cluster import ClusterError
    from fercore.config import RunDirError
    from fercore.data.common import DatasetFormatError
    from fercore.notebooks import NotebookFailed

    try:
        return args.run(args) or 0
    except (_InputError, ClusterError, DatasetFormatError, RunDirError, FileExistsError, FileNotFoundError) as error:
        # A damaged or missing dataset, a run directory holding another run: the user's to fix, without a traceback.
        print(f"fercore {args.command}: {error}", file=sys.stderr)
        return 2
    except NotebookFailed as error:
        print(f"fercore {args.command}: {error}. Finished runs and notebooks are kept: run the same command "
              "again to continue.", file=sys.stderr)
        return 3


def parse_options(pairs: list[str] | None) -> dict:
    """``["resolution=48", "frames=peak"]`` -> ``{"resolution": 48, "frames": "peak"}`` (Python literals where
    the value is one: numbers, True/False/None, lists; else the text)."""
    options = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise _InputError(f"--option {pair!r}: expected KEY=VALUE, e.g. --option resolution=48")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        options[key.strip()] = value
    return options


def _add_dataset_options(p) -> None:
    p.add_argument("--root", default=None, help="dataset folder (default data/<dataset>)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", dest="options",
                   help="a loader option (see `python -c 'from fercore.data import loader; help(loader(NAME))'`), "
                        "e.g. --option resolution=48 for TFD or --option frames=last3 for CK+; repeatable")


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
    _add_dataset_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")

    def run(args):
        from fercore.data.info import print_info

        print_info(args.name, args.root, as_json=args.json, **parse_options(args.options))

    p.set_defaults(run=run)


def _add_archs(sub):
    p = sub.add_parser("archs", help="the registered architectures, their parameter counts and settings")
    p.add_argument("--classes", type=int, default=8, help="output classes the parameters are counted for")

    def run(args):
        import pandas as pd

        from fercore.models import archs_table

        with pd.option_context("display.width", 200, "display.max_colwidth", 90):
            print(archs_table(args.classes).to_string(index=False))

    p.set_defaults(run=run)


def _add_run_options(p, out_help: str):
    """Options shared by ``train``, ``cv`` and ``reproduce``: data, profile, execution, seed and overrides."""
    p.add_argument("--dataset", default="synthfacs", help="dataset name (default synthfacs)")
    _add_dataset_options(p)
    p.add_argument("--arch", default="zero_bias_cnn", help="a registered architecture (`fercore archs` lists them)")
    p.add_argument("--profile", default="quick", choices=["quick", "paper"])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 on GPUs that support it, else fp16; on a CPU bf16 where it computes bf16 "
                        "natively (avx512_bf16, amx) and the arch trains faster in it, else fp32")
    p.add_argument("--deterministic", action="store_true", help="PyTorch's deterministic algorithms (slower)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=None, help="override the profile's number of steps")
    p.add_argument("--eval-every", type=int, default=None, help="override the profile's validation interval")
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_cluster_options(p) -> None:
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="train the runs as Ray tasks: 'local' (Ray on this machine) or a cluster's address "
                        "(host:6379, ray://host:10001, auto); needs pip install -e '.[cluster]'")
    p.add_argument("--runs-per-gpu", type=int, default=1, help="with --cluster on CUDA: runs sharing one GPU")


def _execution(args):
    from fercore.execution import Execution

    try:
        return Execution(device=args.device, precision=args.precision, deterministic=args.deterministic)
    except (ValueError, RuntimeError) as error:
        raise _InputError(str(error)) from None


def _faceset(args):
    """The dataset the command works on, with its loader options."""
    from fercore.data import DATASETS, load

    if args.dataset not in DATASETS:
        raise _InputError(f"unknown dataset {args.dataset!r}; known datasets: {', '.join(DATASETS)}")
    return load(args.dataset, args.root, **parse_options(args.options))


def _overrides(args) -> dict:
    given = {"iterations": args.iterations, "eval_every": args.eval_every}
    return {"seed": args.seed, **{k: v for k, v in given.items() if v is not None}}


def _add_train(sub):
    p = sub.add_parser("train", help="train one variant on one fold (resumes an interrupted run)")
    p.add_argument("--variant", default="cnn_ad", choices=["cnn", "cnn_a", "cnn_d", "cnn_ad"])
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--target", default="emotion", choices=["emotion", "aus"],
                   help="emotion (the paper's task) or aus: AU presence on the FACS-coded frames (the positive "
                        "control of notebook 04; scored by mean per-AU ROC AUC)")
    _add_run_options(p, "run directory (default runs/<profile>-<dataset>/[aus/]<variant>/fold<k>)")

    def run(args):
        from fercore import fau, store
        from fercore.config import TrainConfig, arch_folder
        from fercore.train import train

        execution = _execution(args)
        task = ""
        if args.target == "aus":  # notebook 04's frames: the apex of every coded sequence, the neutral first frames
            args.options = [*(args.options or []), "frames=peak", "unlabelled=True"]
            faceset, task = fau.coded_frames(_faceset(args)), "aus"
            if not len(faceset):
                raise _InputError(f"{args.dataset} has no FACS-coded frames: --target aus needs FACS codes")
        else:
            faceset = _faceset(args)
        config = TrainConfig.from_profile(args.profile, args.arch, dataset=args.dataset, variant=args.variant,
                                          fold=args.fold, target=args.target, **_overrides(args))
        study_dir = store.default_run_dir(args.dataset, args.profile)
        folder = store.experiment_dir(study_dir, task, arch_folder(args.arch))
        out = args.out or store.run_dir_of(folder, args.variant, args.fold)
        result = train(faceset, config, out, execution, progress=not args.no_progress)
        score = "test accuracy" if args.target == "emotion" else "mean per-AU test AUC"
        print(f"{args.variant} fold {args.fold}: {score} {result.test_accuracy:.1%} (checkpoint of "
              f"iteration {result.best_iteration}, validation {result.best_val_accuracy:.1%}), "
              f"{result.seconds:.0f} s, {result.images_per_s:.0f} images/s; run directory {out}")

    p.set_defaults(run=run)


def _add_cv(sub):
    p = sub.add_parser("cv", help="cross-validation over folds x variants (skips finished runs)")
    p.add_argument("--variants", nargs="+", default=None, choices=["cnn", "cnn_a", "cnn_d", "cnn_ad"],
                   help="default: the profile's (all four)")
    p.add_argument("--folds", nargs="+", type=int, default=None, help="default: the profile's")
    _add_run_options(p, "experiment folder (default runs/<profile>-<dataset>)")
    _add_cluster_options(p)

    def run(args):
        import pandas as pd

        from fercore import store
        from fercore.config import arch_folder
        from fercore.experiment import cross_validate, summarize

        execution = _execution(args)
        faceset = _faceset(args)
        out = args.out or store.experiment_dir(store.default_run_dir(args.dataset, args.profile),
                                               arch_folder=arch_folder(args.arch))
        runs = cross_validate(faceset, out, args.profile, args.variants, args.folds, execution, cluster=args.cluster,
                              runs_per_gpu=args.runs_per_gpu, progress=not args.no_progress, dataset=args.dataset,
                              arch=args.arch, **_overrides(args))
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 160):
            print(summarize(runs).to_string(index=False))
        print(f"test accuracy per variant over {runs.fold.nunique()} folds; runs and summary.csv in {out}")

    p.set_defaults(run=run)


def _add_reproduce(sub):
    p = sub.add_parser("reproduce", help="the protocol's whole grid, every notebook on it, and a report folder")
    _add_run_options(p, "report folder (default reports/<profile>-<dataset>)")
    _add_cluster_options(p)
    p.add_argument("--runs", default=None, help="run directory (default runs/<profile>-<dataset>)")
    p.add_argument("--notebooks", nargs="*", default=None, metavar="PREFIX",
                   help="execute only these notebooks (e.g. 00 02); alone: none (default: all)")
    p.add_argument("--notebook-workers", type=int, default=None, metavar="N",
                   help="notebooks executed side by side, each kernel with cores/N torch threads (default: 2 "
                        "where there are 2 cores or more; 1: one after the other)")

    def run(args):
        from fercore.reproduce import check_options, print_report, reproduce

        execution = _execution(args)
        overrides = _overrides(args)
        seed = overrides.pop("seed")
        if args.notebook_workers is not None and args.notebook_workers < 1:
            raise _InputError(f"--notebook-workers must be at least 1, got {args.notebook_workers}")
        try:
            check_options(args.notebooks, overrides)
        except ValueError as error:  # overrides with notebook 01: say what to change
            raise _InputError(str(error)) from None
        report = reproduce(args.dataset, args.root, args.profile, execution, out=args.out,
                           run_dir=args.runs, notebooks=args.notebooks, seed=seed, options=parse_options(args.options),
                           arch=args.arch, cluster=args.cluster, runs_per_gpu=args.runs_per_gpu,
                           progress=not args.no_progress, notebook_workers=args.notebook_workers, **overrides)
        print_report(report)

    p.set_defaults(run=run)


def _add_demo(sub):
    p = sub.add_parser("demo", help="`fercore reproduce` on SynthFACS (written when missing), quick profile")
    p.add_argument("--data", default=None, help="SynthFACS folder (default data/synthfacs; written when missing)")
    p.add_argument("--out", default=None, help="report folder (default reports/quick-synthfacs)")
    p.add_argument("--device", default="cpu")

    def run(args):
        from fercore.execution import Execution
        from fercore.reproduce import print_report, reproduce

        print_report(reproduce("synthfacs", args.data, "quick", Execution(device=args.device), out=args.out))

    p.set_defaults(run=run)


def _add_bench(sub):
    p = sub.add_parser("bench", help="speed and realism benchmarks (print measured rates, ratios and scores)")
    p.add_argument("what", choices=["synth", "train", "load", "mine", "grid", "precision", "realism"])
    p.add_argument("--root", default=None, help="realism: CK+-layout tree to score; precision: the SynthFACS tree "
                                                "(default data/synthfacs)")
    p.add_argument("--subjects", type=int, default=120, help="synth: number of identities")
    p.add_argument("--workers", type=int, default=None, help="synth: processes")
    p.add_argument("--device", default="cpu", help="train, mine, grid: cpu, cuda, ...")
    p.add_argument("--profile", default="paper", choices=["quick", "paper"],
                   help="train, mine: model size and batch of this profile (default paper: 96x96, width 1, batch 64)")
    p.add_argument("--steps", type=int, default=None, help="train: timed steps per pipeline")
    p.add_argument("--arch", default=None, help="train, mine: a registered architecture (mine default: every one; "
                                                "train default: zero_bias_cnn)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="precision: train both grids as Ray tasks ('local' or a cluster's address)")

    def run(args):
        from fercore import bench
        from fercore.data.synthfacs.realism import FerWeightsMissing

        options = {"synth": dict(subjects=args.subjects, workers=args.workers),
                   "train": dict(device=args.device, profile=args.profile, steps=args.steps,
                                 arch=args.arch or "zero_bias_cnn"),
                   "mine": dict(device=args.device, profile=args.profile, arch=args.arch), "load": {},
                   "grid": dict(device=args.device),
                   "precision": dict(device=args.device, root=args.root, cluster=args.cluster),
                   "realism": dict(root=args.root)}[args.what]
        try:
            bench.run(args.what, **options)
        except FerWeightsMissing as error:
            raise _InputError(str(error)) from None

    p.set_defaults(run=run)


if __name__ == "__main__":
    sys.exit(main())
