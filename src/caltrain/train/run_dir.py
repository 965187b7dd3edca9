"""The run directory: what a run writes, where, and how completion is recognised.

::

    RUN_DIR/
      config.yaml        the resolved configuration (reload it with ``caltrain train --config``)
      meta.json          caltrain/torch versions, git revision, device, world size, start time
      metrics.jsonl      one JSON object per evaluation (epoch ends, and every k steps when asked)
      checkpoint.pt      the last good state: model, optimiser, scheduler, objective, RNG, history
      best.pt            the selected model's weights (when selecting the best validation epoch)
      logits_val.npz     the selected model's validation logits and labels (``logits``, ``labels``)
      logits_test.npz    the same on the test split
      summary.json       final metrics; written last, so its presence marks a complete run

Every file is written atomically (temporary file + rename): an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caltrain.utils.io import atomic_write_json, atomic_write_text, read_json

__all__ = ["RunDir", "git_revision"]


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    config = property(lambda self: self.root / "config.yaml")
    meta = property(lambda self: self.root / "meta.json")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    checkpoint = property(lambda self: self.root / "checkpoint.pt")
    best = property(lambda self: self.root / "best.pt")
    summary = property(lambda self: self.root / "summary.json")

    def logits(self, split: str) -> Path:
        return self.root / f"logits_{split}.npz"

    def is_complete(self) -> bool:
        """True when ``summary.json`` exists (it is written last)."""
        return self.summary.exists()

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.summary)

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
        import yaml

        atomic_write_text(self.config, yaml.safe_dump(config_dict, sort_keys=False))

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_json(self.meta, meta)


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
