"""The run directory and the suite directory: what a run writes, where, and how completion is recognised.

This module is the one place that knows file names; every writer (trainer, suite, aggregate) and every reader
(report, aggregate) gets its paths from :class:`RunDir` and :class:`SuiteDir`.

::

    RUN_DIR/
      config.yaml        the resolved configuration (reload it with ``caltrain train --config``)
      meta.json          caltrain/torch versions, git revision, device, world size, start time
      labels.json        grid coordinates (dataset, model, objective, variant, seed); runs of a suite only
      metrics.jsonl      one JSON object per evaluation (epoch ends, and every k steps when asked)
      checkpoint.pt      the last good state: model, optimiser, scheduler, objective, RNG, history
      best.pt            the selected model's weights (when selecting the best validation epoch)
      logits_val.npz     the selected model's validation logits and labels (``logits``, ``labels``)
      logits_test.npz    the same on the test split
      logits_ood.npz     the same on the first paired OOD set (when ``eval.ood`` is on)
      calibrators/<name>.json
                         every post-hoc calibrator of ``eval.posthoc``, fitted on the validation logits
                         (``Calibrator.save``; reload with :func:`caltrain.posthoc.load`)
      summary.json       final metrics; written last, so its presence marks a complete run

    SUITE_DIR/
      suite.json         the suite's name, description, run names and command-line overrides
      runs/<dataset>__<objective>[__<variant>]__seed<k>/    one RUN_DIR per grid point
      results.csv        the aggregate rows (:func:`caltrain.train.aggregate.aggregate`)
      results.md         the same as a Markdown table
      results.json       the same with per-seed values and per-epoch curves
      report.html        the report (``caltrain report``; ``report.md`` with ``--format md``)

Every file is written atomically (temporary file + rename): an interrupted run never leaves a half-written file.
Runs written before calibrators were saved have no ``calibrators/`` folder.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caltrain.utils.io import atomic_write_json, atomic_write_text, read_json

__all__ = ["RESULTS_FORMATS", "RunDir", "SuiteDir", "git_revision"]

#: The formats of a suite's aggregate ``results.<format>`` files.
RESULTS_FORMATS = ("csv", "md", "json")


def _entry(name: str) -> property:
    """A read-only attribute: the path ``root / name`` of a file or folder of the layout."""
    return property(lambda self: self.root / name, doc=f"``{name}``")


@dataclass(frozen=True)
class _Folder:
    """A folder of the layout: ``root`` (any path-like, stored as a ``Path``; it need not exist yet)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def report(self, format: str = "html") -> Path:
        """``report.<format>``: where ``caltrain report`` writes by default ("html" or "md")."""
        return self.root / f"report.{format}"


@dataclass(frozen=True)
class RunDir(_Folder):
    """Paths of the run directory ``root`` (module docstring: the layout), and its small readers and writers."""

    config = _entry("config.yaml")
    meta = _entry("meta.json")
    labels = _entry("labels.json")
    metrics = _entry("metrics.jsonl")
    checkpoint = _entry("checkpoint.pt")
    best = _entry("best.pt")
    summary = _entry("summary.json")
    calibrators = _entry("calibrators")

    def logits(self, split: str) -> Path:
        """``logits_<split>.npz`` (``split``: "val", "test" or "ood")."""
        return self.root / f"logits_{split}.npz"

    def calibrator(self, name: str) -> Path:
        """``calibrators/<name>.json``: the saved post-hoc calibrator ``name`` (a ``caltrain.posthoc`` name)."""
        return self.calibrators / f"{name}.json"

    def saved_calibrators(self) -> list[str]:
        """Names of the calibrators saved under ``calibrators/``, sorted (empty for runs that saved none)."""
        if not self.calibrators.is_dir():
            return []
        return sorted(p.stem for p in self.calibrators.glob("*.json") if p.is_file())

    def is_complete(self) -> bool:
        """True when ``summary.json`` exists (it is written last)."""
        return self.summary.is_file()

    def read_summary(self) -> dict[str, Any]:
        """``summary.json`` as a dict."""
        return read_json(self.summary)

    def read_labels(self) -> dict[str, Any] | None:
        """``labels.json`` (the grid coordinates a suite wrote), or None for a stand-alone run."""
        return read_json(self.labels) if self.labels.is_file() else None

    def write_labels(self, labels: dict[str, Any]) -> None:
        """Write ``labels.json`` (atomically)."""
        atomic_write_json(self.labels, labels)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl`` (empty if the file does not exist)."""
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.jsonl`` with ``records`` (atomically)."""
        from caltrain.utils.io import to_jsonable

        atomic_write_text(self.metrics, "".join(json.dumps(to_jsonable(r)) + "\n" for r in records))

    def write_config(self, config_dict: dict[str, Any]) -> None:
        """Write ``config.yaml`` (atomically, keys in the given order)."""
        import yaml

        atomic_write_text(self.config, yaml.safe_dump(config_dict, sort_keys=False))

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write ``meta.json`` (atomically)."""
        atomic_write_json(self.meta, meta)


@dataclass(frozen=True)
class SuiteDir(_Folder):
    """Paths of the suite directory ``root`` (module docstring: the layout); each run is a :class:`RunDir`."""

    meta = _entry("suite.json")
    runs = _entry("runs")

    def results(self, format: str) -> Path:
        """``results.<format>``: the aggregate rows as "csv", "md" (a Markdown table) or "json" (with per-seed
        values and curves), written by :func:`caltrain.train.aggregate.aggregate`."""
        from caltrain.utils.checks import check_choice

        return self.root / f"results.{check_choice(format, 'format', RESULTS_FORMATS)}"

    def run(self, name: str) -> RunDir:
        """The run directory ``runs/<name>``."""
        return RunDir(self.runs / name)

    def run_names(self) -> list[str]:
        """Names of the folders under ``runs/`` (complete or not), sorted; empty when there is none."""
        if not self.runs.is_dir():
            return []
        return sorted(p.name for p in self.runs.iterdir() if p.is_dir())

    def read_meta(self) -> dict[str, Any]:
        """``suite.json``, or ``{}`` when absent (a suite assembled by hand)."""
        return read_json(self.meta) if self.meta.is_file() else {}

    def is_suite(self) -> bool:
        """True when the folder holds a ``runs/`` folder or an aggregate ``results.json``."""
        return self.runs.is_dir() or self.results("json").is_file()


def git_revision() -> str | None:
    """The git commit of the caltrain source tree, when it runs from a git checkout (else None)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    rev = out.stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5)
    return rev + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
