"""Checkpoints that resume exactly: every state a run's future depends on, saved atomically.

A checkpoint taken at the end of epoch ``e`` holds the model, optimiser, scheduler, gradient scaler, the
objective's state (EMA tables, per-bin gammas, ...), the model-selection state, the metric history, and the
random-number-generator states (torch CPU and CUDA, NumPy, Python, and the trainer's own generator). The data
loaders draw their permutation and augmentation from ``(seed, epoch, rank)``, so they need no saved state.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caltrain.utils.io import call_atomically

__all__ = ["capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]


def capture_rng(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every global RNG state (and ``generator``'s) as a picklable dict."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`capture_rng` captured."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` ``state`` to ``path`` atomically."""
    call_atomically(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (it holds NumPy RNG state: not weights-only)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume (was the run started?)")
    return torch.load(path, map_location=map_location, weights_only=False)
