"""Reading what the trainer wrote: one run directory, or a suite directory of many, into plain records.

The layout is :mod:`caltrain.train.run_dir`'s (every path comes from :class:`~caltrain.train.run_dir.RunDir` and
:class:`~caltrain.train.run_dir.SuiteDir`): a run directory holds ``config.yaml``, ``metrics.jsonl``,
``summary.json`` (written last: its presence marks a complete run), ``logits_val.npz`` / ``logits_test.npz``
(arrays ``logits`` [N, C] and ``labels`` [N]), the fitted calibrators ``calibrators/<name>.json`` and, inside a
suite, ``labels.json`` with its grid coordinates. A suite directory holds
``runs/<dataset>__<objective>[__<variant>]__seed<k>/`` and the aggregate ``results.json`` of
:func:`caltrain.train.aggregate.aggregate`.

Loading is pure: nothing here writes a file. Nothing here imports matplotlib or computes a metric; the records
are what the plots and the report read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from caltrain.train.run_dir import RunDir, SuiteDir
from caltrain.utils.io import load_arrays, read_json

if TYPE_CHECKING:
    import torch

    from caltrain.posthoc import Calibrator

__all__ = ["RunRecord", "SuiteRecord", "group_label", "is_run_dir", "is_suite_dir", "load_run", "load_suite"]


def is_run_dir(path: str | Path) -> bool:
    """True when ``path`` is a complete run directory (it holds ``summary.json``)."""
    return RunDir(Path(path)).is_complete()


def is_suite_dir(path: str | Path) -> bool:
    """True when ``path`` holds a ``runs/`` folder or an aggregate ``results.json``."""
    return SuiteDir(Path(path)).is_suite()


@dataclass
class RunRecord:
    """One complete run: its grid labels, configuration, summary and per-epoch records.

    Attributes:
        path: the run directory.
        name: its folder name.
        labels: grid coordinates from ``labels.json`` (``dataset``, ``model``, ``objective``, ``variant``,
            ``seed``); for a stand-alone run they are filled from ``config.yaml``.
        config: the resolved configuration (``config.yaml``), ``{}`` when absent.
        config_text: the text of ``config.yaml`` as written by the trainer.
        summary: ``summary.json``.
        epochs: the epoch-end records of ``metrics.jsonl`` (integer ``epoch`` and a ``val`` entry), in order.
        curvature: the records holding a ``curvature`` entry (``{"epoch", "step", "curvature": {...}}``).
    """

    path: Path
    name: str
    labels: dict[str, Any]
    config: dict[str, Any]
    config_text: str
    summary: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    curvature: list[dict[str, Any]] = field(default_factory=list)

    @property
    def objective(self) -> str:
        return str(self.labels.get("objective", "?"))

    @property
    def dataset(self) -> str:
        return str(self.labels.get("dataset", "?"))

    @property
    def seed(self) -> int:
        return int(self.labels.get("seed", 0) or 0)

    @property
    def n_bins(self) -> int:
        """The number of bins the run's ECE used (``eval.n_bins``, 15 by default)."""
        return int((self.config.get("eval") or {}).get("n_bins", 15))

    @property
    def abstention(self) -> str | None:
        """The abstention convention of the run's metrics (``None`` for a K-output model)."""
        return self.summary.get("abstention")

    @property
    def files(self) -> RunDir:
        """The paths of the run directory."""
        return RunDir(self.path)

    def has_logits(self, split: str) -> bool:
        """True when the run saved ``split``'s logits ("val", "test" or "ood")."""
        return self.files.logits(split).is_file()

    def logits(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """``(logits [N, C] float, labels [N] int)`` of the selected model on ``split`` ("val" or "test").

        Raises:
            FileNotFoundError: the run did not save that split's logits.
        """
        path = self.files.logits(split)
        arrays = _arrays(str(path), path.stat().st_mtime_ns)
        return arrays["logits"].copy(), arrays["labels"].copy()

    @property
    def saved_calibrators(self) -> list[str]:
        """Names of the calibrators the run saved (``calibrators/<name>.json``); empty for runs written before
        calibrators were saved."""
        return self.files.saved_calibrators()

    def calibrator(self, name: str) -> "Calibrator":
        """The fitted calibrator ``name`` the run saved, read with :func:`caltrain.posthoc.load` (never refitted).

        It was fitted on the validation logits the run's calibrators see
        (:func:`caltrain.abstention.calibration_logits` under :data:`calibration_abstention`).

        Raises:
            FileNotFoundError: the run saved no calibrator ``name`` (runs written before calibrators were saved
                have none).
        """
        from caltrain import posthoc

        path = self.files.calibrator(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"calibrator: run {self.name} saved no calibrator {name!r} ({path} is missing"
                f"{'; it saved ' + ', '.join(self.saved_calibrators) if self.saved_calibrators else ''})"
            )
        return posthoc.load(path)

    @property
    def calibration_abstention(self) -> str | None:
        """The convention the run's calibrators were fitted under: :data:`caltrain.posthoc.RUN_ABSTENTION` (the
        K class logits) for a K+1-output run, None otherwise."""
        from caltrain.posthoc import RUN_ABSTENTION

        return RUN_ABSTENTION if self.abstention else None

    def probs(self, split: str = "test") -> tuple["torch.Tensor", "torch.Tensor"]:
        """``(probs [N, C] float64, labels [N] int64)``: the float64 softmax of the saved logits.

        For a run with an abstention output (K+1 logits) the columns follow the run's own convention
        (``summary["abstention"]``, :func:`caltrain.metrics.apply_abstention`), so a diagram's ECE is the one in
        the summary: ``"with_unknown"`` keeps the K+1 columns (predicting unknown counts as wrong),
        ``"renormalized"`` gives p_k / (1 - p_idk). Reading: ``"without_unknown"`` rows do not sum to 1, so
        plots use the renormalised rows for it (same prediction, confidence rescaled); the report says so.
        """
        import torch

        logits, labels = self.logits(split)
        p = torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float64)), dim=1)
        if self.abstention:
            from caltrain.abstention import apply_abstention, distribution_convention

            p, _ = apply_abstention(p, distribution_convention(self.abstention))
        return p, torch.from_numpy(np.asarray(labels)).to(torch.int64)

    @cached_property
    def num_classes(self) -> int | None:
        """K (the logits' width, minus the abstention output when the run had one)."""
        if not self.has_logits("test"):
            return None
        width = int(self.logits("test")[0].shape[1])
        return width - 1 if self.abstention else width


@lru_cache(maxsize=32)
def _arrays(path: str, mtime_ns: int) -> dict[str, np.ndarray]:
    """The arrays of a ``logits_*.npz`` file, kept for the next few reads (a report reads a run's test logits
    for its verdict, reliability diagrams, per-class table and OOD histograms); ``mtime_ns`` makes a rewritten
    file a new entry. Callers get copies."""
    return load_arrays(Path(path))


def load_run(path: str | Path) -> RunRecord:
    """Read one complete run directory.

    Raises:
        FileNotFoundError: ``path`` is not a directory or holds no ``summary.json`` (the run is incomplete).
    """
    from caltrain.train.config import load_yaml

    root = Path(path)
    run = RunDir(root)
    if not root.is_dir():
        raise FileNotFoundError(f"path: no such run directory: {root}")
    if not run.is_complete():
        raise FileNotFoundError(f"path: {root} holds no summary.json (not a run directory, or the run is incomplete)")
    config_text = run.config.read_text() if run.config.is_file() else ""
    config = load_yaml(run.config) if config_text else {}  # yaml.safe_load; an error names the file
    labels = run.read_labels()
    if labels is None:
        labels = {
            "dataset": (config.get("data") or {}).get("name", "?"),
            "model": (config.get("model") or {}).get("name", "?"),
            "objective": (config.get("loss") or {}).get("name", "?"),
            "variant": "",
            "seed": config.get("seed", 0),
        }
    records = run.read_metrics()
    epochs = [r for r in records if isinstance(r.get("epoch"), int) and "val" in r]
    curvature = [r for r in records if isinstance(r.get("curvature"), dict)]
    return RunRecord(path=root, name=root.name, labels=labels, config=config, config_text=config_text,
                     summary=run.read_summary(), epochs=epochs, curvature=curvature)


@dataclass
class SuiteRecord:
    """A suite directory: its complete runs and the aggregate rows.

    Attributes:
        path: the suite directory.
        name: the suite's name (``suite.json``) or the folder name.
        description: the suite's description ('' when unknown).
        runs: every complete run under ``runs/``, sorted by (dataset, objective, variant, seed).
        rows: the rows of ``results.json`` (one per dataset x model x objective x variant, mean/std over seeds);
            computed in memory by :func:`caltrain.train.aggregate.results` when the file is missing.
        incomplete: names of run folders without ``summary.json``.
    """

    path: Path
    name: str
    description: str
    runs: list[RunRecord]
    rows: list[dict[str, Any]]
    incomplete: list[str] = field(default_factory=list)

    def datasets(self) -> list[str]:
        """Dataset labels in first-seen order."""
        return list(dict.fromkeys(r.dataset for r in self.runs))

    def runs_of(self, dataset: str | None = None, objective: str | None = None) -> list[RunRecord]:
        return [r for r in self.runs if (dataset is None or r.dataset == dataset)
                and (objective is None or r.objective == objective)]

    def objectives(self, dataset: str | None = None) -> list[str]:
        """Objective labels (with their variant, ``objective/variant``) in first-seen order."""
        return list(dict.fromkeys(group_label(r) for r in self.runs_of(dataset)))


def group_label(run: RunRecord) -> str:
    """The label a run's group is drawn under: the objective, plus ``/variant`` when the suite has variants."""
    variant = run.labels.get("variant") or ""
    return f"{run.objective}/{variant}" if variant else run.objective


def load_suite(path: str | Path) -> SuiteRecord:
    """Read a suite directory (its complete runs and ``results.json``); writes nothing.

    When ``results.json`` is missing (a suite copied without it) the rows are computed in memory by
    :func:`caltrain.train.aggregate.results` (the same rows ``caltrain bench`` writes), and no file is written.

    Raises:
        FileNotFoundError: ``path`` is not a suite directory.
    """
    suite = SuiteDir(Path(path))
    root = suite.root
    if not root.is_dir() or not suite.is_suite():
        raise FileNotFoundError(f"path: {root} is not a suite directory (expected a runs/ folder or results.json)")
    runs, incomplete = [], []
    for name in suite.run_names():
        if suite.run(name).is_complete():
            runs.append(load_run(suite.run(name).root))
        else:
            incomplete.append(name)
    runs.sort(key=lambda r: (r.dataset, r.objective, str(r.labels.get("variant") or ""), r.seed))
    meta = suite.read_meta()
    if suite.results("json").is_file():
        rows = read_json(suite.results("json")).get("rows", [])
    elif runs:
        from caltrain.train.aggregate import results

        rows = results(root, runs=[r.name for r in runs])[1]["rows"]
    else:
        rows = []
    return SuiteRecord(path=root, name=meta.get("name", root.name), description=meta.get("description", ""),
                       runs=runs, rows=rows, incomplete=incomplete)
