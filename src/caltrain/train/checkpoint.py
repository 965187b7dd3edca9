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

from torch import nn

import numpy as np
import torch

from caltrain.utils.io import call_atomically

__all__ = ["capture_rng", "capture_run_state", "load_checkpoint", "restore_rng", "restore_run_state", "save_checkpoint"]


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


def capture_run_state(
    *, epoch: int, step: int, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any, objective: nn.Module,
    generator: torch.Generator, curvature: Any, history: list[dict[str, Any]], best: dict[str, Any],
    config: dict[str, Any],
) -> dict[str, Any]:
    """Everything the rest of a run depends on after 0-based ``epoch`` (``model`` is the unwrapped module)."""
    return {
        "epoch": epoch,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "objective": objective.state_dict(),
        "rng": capture_rng(generator),
        "curvature": curvature.state_dict() if curvature is not None else None,
        "history": history,
        "best": best,
        "config": config,
    }


def restore_run_state(
    path: str | Path, *, config: dict[str, Any], config_file: str | Path, device: Any, model: nn.Module,
    optimizer: Any, scheduler: Any, scaler: Any, objective: nn.Module, generator: torch.Generator, curvature: Any,
) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into the given components and RNGs (the inverse of :func:`capture_run_state`).

    Refuses a checkpoint made with another configuration than ``config`` (the run's ``config_file``), except for
    keys that do not change results (``run_dir.NON_RESULT_KEYS``) and a larger ``epochs`` (a run extended with
    ``caltrain train --resume RUN --epochs N``; the command checks the schedule allows it). Returns
    the loop's own state: ``start_epoch`` (0-based), ``step``, ``history`` and ``best``.
    """
    ckpt = load_checkpoint(path, map_location=device)
    if not _same_run(ckpt["config"], config, finished=ckpt["epoch"] + 1):
        raise ValueError(
            f"{path}: the checkpoint was made with a different configuration than {config_file}"
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    objective.load_state_dict(ckpt["objective"])
    restore_rng({k: v.cpu() if torch.is_tensor(v) else v for k, v in ckpt["rng"].items()}, generator)
    if curvature is not None and ckpt.get("curvature") is not None:
        curvature.load_state_dict(ckpt["curvature"])
    return {"start_epoch": ckpt["epoch"] + 1, "step": ckpt["step"], "history": ckpt["history"], "best": ckpt["best"]}


def _same_run(saved: dict[str, Any], config: dict[str, Any], *, finished: int) -> bool:
    """True when ``config`` continues the run of the checkpoint's ``saved`` configuration after ``finished``
    epochs: equal but for the keys that do not change results, and ``epochs`` when it grows past ``finished``."""
    from caltrain.train.run_dir import result_config

    saved, config = result_config(saved), result_config(config)
    if config.get("epochs", 0) > finished:  # extending (or the run as it was): the rest must match
        saved.pop("epochs", None)
        config.pop("epochs", None)
    return saved == config
