"""``Study``: one dataset under one profile, as a notebook's set-up cell (or a script) needs it.

    study = Study(dataset, profile, data_root=data_root, run_dir=run_dir, device=device, seed=seed)
    faceset = study.faceset()          # the main task's FaceSet, loaded once
    model = study.model("cnn_ad", 0)   # the run notebook 01 trained, on the study's device
    study.save_figure(fig, "03_positions")
    study.write(summary)               # a summary dataclass -> <run_dir>/<its notebook>.json

Where things live is ``fercore.store``'s business; this class only binds a study's settings to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import nn

from fercore import store
from fercore.config import TrainConfig, arch_folder
from fercore.data.faceset import FaceSet
from fercore.execution import Execution
from fercore.models import DEFAULT_ARCH
from fercore.train import TrainResult, load_model, load_result, train


@dataclass
class Study:
    """A study's settings: the dataset and its loader options, the profile, the run directory, device, seed."""

    dataset: str = "synthfacs"  # loader name (fercore.data.load)
    profile: str = "quick"  # "quick" or "paper" (fercore.config.PROFILES)
    data_root: str | os.PathLike | None = None  # None: data/<dataset>
    run_dir: str | os.PathLike | None = None  # None: runs/<profile>-<dataset>
    device: str = "cpu"
    seed: int = 0
    options: dict = field(default_factory=dict)  # loader options for every FaceSet of the study
    arch: str = DEFAULT_ARCH  # the registered architecture whose runs the study reads and trains
    _facesets: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir) if self.run_dir else store.default_run_dir(self.dataset, self.profile)

    @property
    def figures(self) -> Path:
        return Path(self.run_dir) / "figures"

    def faceset(self, **protocol) -> FaceSet:
        """The dataset under the study's options and ``protocol`` (e.g. ``frames="peak"``); loaded once per protocol."""
        from fercore.data import load

        options = {**self.options, **protocol}
        key = repr(sorted(options.items()))
        if key not in self._facesets:
            self._facesets[key] = load(self.dataset, self.data_root, **options)
        return self._facesets[key]

    def with_seed(self, seed: int) -> Study:
        """The same study from another seed, its runs in ``<run_dir>/seeds/<seed>`` (a run folder holds one seed's
        run; the facesets loaded so far are shared). For stability over seeds, e.g. in notebook 04."""
        other = replace(self, seed=seed, run_dir=Path(self.run_dir) / "seeds" / str(seed))
        other._facesets = self._facesets
        return other

    def execution(self) -> Execution:
        return Execution(device=self.device)

    def run_files(self, variant: str, fold: int, task_folder: str = "") -> store.RunFiles:
        """The files of one run of the study's grid (``task_folder``: "" for the main task, "classes6", "aus", ...)."""
        folder = store.experiment_dir(self.run_dir, task_folder, arch_folder(self.arch))
        return store.RunFiles(store.run_dir_of(folder, variant, fold))

    def train_config(self, variant: str, fold: int, **overrides) -> TrainConfig:
        """The profile's config for one run, with the study's dataset and seed."""
        return TrainConfig.from_profile(self.profile, self.arch, **{"dataset": self.dataset, "variant": variant,
                                                                    "fold": fold, "seed": self.seed, **overrides})

    def train(self, variant: str, fold: int, target: str = "emotion", faceset: FaceSet | None = None,
              progress: bool = True, **overrides) -> TrainResult:
        """Train (or read back, or resume) one run on the study's device: of the main task (target "emotion"), or
        of another target (e.g. "aus" on ``fau.coded_frames``), whose runs live in the task folder named after it.
        ``overrides`` set TrainConfig fields (a finished run with other settings is refused, not overwritten)."""
        files = self.run_files(variant, fold, _task_folder(target))
        config = self.train_config(variant, fold, target=target, **overrides)
        return train(faceset or self.faceset(), config, files.dir, self.execution(), progress=progress)

    def result(self, variant: str, fold: int, target: str = "emotion") -> TrainResult:
        return load_result(self._finished(variant, fold, target).dir)

    def model(self, variant: str, fold: int, target: str = "emotion") -> nn.Module:
        """The selected (best-validation) model of a finished run, in eval mode on the study's device."""
        return load_model(self._finished(variant, fold, target).dir, device=self.device)

    def _finished(self, variant: str, fold: int, target: str) -> store.RunFiles:
        files = self.run_files(variant, fold, _task_folder(target))
        if not files.finished:
            how = "notebooks/01_training.ipynb" if target == "emotion" else "Study.train(..., target=...)"
            raise FileNotFoundError(f"no finished run in {files.dir}: run {how} (variant={variant!r}, fold={fold}) "
                                    "or `fercore train` first (a run stopped early resumes where it stopped)")
        return files

    def trained_folds(self, variant: str) -> list[int]:
        """The folds of the main task with a finished run of ``variant`` (for stability across networks)."""
        folds = range(len(self.faceset().splits))
        return [fold for fold in folds if self.run_files(variant, fold).finished]

    def save_figure(self, fig, name: str) -> None:
        """Write ``fig`` to ``<run_dir>/figures/<name>.png`` (``study.figures``); the figure stays displayed in the
        notebook. Returns None, so a notebook cell that ends with this call shows the figure and nothing else."""
        store.save_figure(fig, self.figures, name)

    def write(self, summary) -> Path:
        """Write a notebook's summary dataclass (``fercore.summaries``) to ``<run_dir>/<summary.NOTEBOOK>.json``."""
        return store.write_json(Path(self.run_dir) / f"{summary.NOTEBOOK}.json", summary)

    def read(self, notebook: str) -> dict:
        """What notebook ``notebook`` ("00_datasets", ...) wrote; a clear error names it when missing."""
        return store.read_json(Path(self.run_dir) / f"{notebook}.json", produced_by=f"notebooks/{notebook}.ipynb")


def _task_folder(target: str) -> str:
    return "" if target == "emotion" else target


__all__ = ["Study"]
