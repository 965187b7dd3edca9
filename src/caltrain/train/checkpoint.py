"""Checkpoints that resume exactly: every state a run's future depends on, saved atomically, loaded without code.

A checkpoint taken at the end of epoch ``e`` holds the model, optimiser, scheduler, gradient scaler, the
objective's state (EMA tables, per-bin gammas, ...), the model-selection state, the metric history, the
configuration, the world size (number of processes) of the run, and the random-number-generator states (torch
CPU and CUDA, NumPy, Python, and the trainer's own generator). The data loaders draw their permutation and
augmentation from ``(seed, epoch, rank)``, so they need no saved state.

Trust: a checkpoint holds only tensors, numbers, strings, ``None`` and plain containers (dicts, lists, tuples),
and every file is read with ``torch.load(..., weights_only=True)``, which refuses anything else: a crafted
``checkpoint.pt`` or ``best.pt`` cannot run code when a run is resumed or finished. NumPy's and Python's RNG
states (tuples holding NumPy arrays and long tuples of ints) are converted to tensors on save and back on load
(:func:`capture_rng` / :func:`restore_rng`). A file that cannot be read as a checkpoint (empty, truncated, not a
torch file, refused objects, missing parts) raises a ``ValueError`` whose one-line message names the file.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Iterable

from torch import nn

import numpy as np
import torch

from caltrain.utils.io import call_atomically

__all__ = [
    "BEST_KEYS",
    "CHECKPOINT_KEYS",
    "capture_rng",
    "capture_run_state",
    "load_checkpoint",
    "restore_rng",
    "restore_run_state",
    "save_checkpoint",
]

#: What :func:`capture_run_state` writes (``curvature`` may be None); a file missing any of them is refused.
CHECKPOINT_KEYS = ("epoch", "step", "world_size", "model", "optimizer", "scheduler", "scaler", "objective", "rng",
                   "curvature", "history", "best", "config")
#: What ``best.pt`` (the selected model's weights) holds.
BEST_KEYS = ("model", "epoch")


def _tensor_of_ints(values: Iterable[int]) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.int64)


def capture_rng(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every global RNG state (and ``generator``'s), as tensors, numbers and plain dicts (weights-only loadable)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": _tensor_of_ints(internal),
                   "gauss_next": None if gauss_next is None else float(gauss_next)},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`capture_rng` captured (its tensors may be on any device)."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["key"].cpu().numpy().astype(np.uint32), int(np_state["pos"]),
                         int(np_state["has_gauss"]), float(np_state["cached_gaussian"])))
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"].cpu())


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` ``state`` to ``path`` atomically (tensors, numbers and plain containers only)."""
    call_atomically(path, lambda fh: torch.save(state, fh))


def _one_line(err: BaseException) -> str:
    """A short, one-line reason from torch's (multi-line) load errors."""
    text = str(err)
    refused = re.search(r"GLOBAL (\S+)", text)
    if refused:
        name = refused.group(1)
        hint = (" (checkpoints of caltrain 0.1.0 held NumPy RNG state this way: restart such a run)"
                if name.startswith("numpy") else "")
        return (f"it holds a Python object ({name}), where a checkpoint holds only tensors, numbers and plain "
                f"containers; refused without running it{hint}")
    if "WeightsUnpickler error:" in text:
        after = text.split("WeightsUnpickler error:", 1)[1]
        reason = next((line.strip() for line in after.splitlines() if line.strip()), "unsupported content")
        return f"{reason}: not a file caltrain writes; refused without running it"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "no details")
    return f"truncated, corrupt or not a torch file ({type(err).__name__}: {first})"


def load_checkpoint(path: str | Path, map_location: Any = "cpu", *,
                    required: Iterable[str] = CHECKPOINT_KEYS) -> dict[str, Any]:
    """Load a file written by :func:`save_checkpoint` with ``weights_only=True`` (no code can run).

    Args:
        required: the keys the file must hold (:data:`CHECKPOINT_KEYS`; :data:`BEST_KEYS` for ``best.pt``).
    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is empty, truncated, not a torch file, holds anything but tensors, numbers and
            plain containers, or lacks a ``required`` key; the one-line message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume (was the run started?)")
    if not path.is_file():
        raise ValueError(f"{path}: not a checkpoint file (a {'directory' if path.is_dir() else 'special file'})")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: not a readable checkpoint: the file is empty")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, KeyError, EOFError, ...
        raise ValueError(f"{path}: not a readable checkpoint: {_one_line(err)}") from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a caltrain checkpoint (it holds a {type(ckpt).__name__}, not a dict)")
    missing = [k for k in required if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a caltrain checkpoint (missing {', '.join(missing)})")
    return ckpt


def capture_run_state(
    *, epoch: int, step: int, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any, objective: nn.Module,
    generator: torch.Generator, curvature: Any, history: list[dict[str, Any]], best: dict[str, Any],
    config: dict[str, Any], world_size: int = 1,
) -> dict[str, Any]:
    """Everything the rest of a run depends on after 0-based ``epoch`` (``model`` is the unwrapped module).

    ``world_size`` is the number of processes training the run (1 without torchrun): a resume must use as many.
    """
    return {
        "epoch": epoch,
        "step": step,
        "world_size": int(world_size),
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
    world_size: int = 1,
) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into the given components and RNGs (the inverse of :func:`capture_run_state`).

    Refuses (``ValueError``) a checkpoint made with another configuration than ``config`` (the run's
    ``config_file``), except for keys that do not change results (``run_dir.NON_RESULT_KEYS``) and a larger
    ``epochs`` (a run extended with ``caltrain train --resume RUN --epochs N``; the command checks the schedule
    allows it), one written by another number of processes than ``world_size``, or one whose parts do not fit the
    components. Returns the loop's own state: ``start_epoch`` (0-based), ``step``, ``history`` and ``best``.
    """
    ckpt = load_checkpoint(path, map_location=device)
    if not _same_run(ckpt["config"], config, finished=ckpt["epoch"] + 1):
        raise ValueError(
            f"{path}: the checkpoint was made with a different configuration than {config_file}"
        )
    saved_world = ckpt["world_size"]
    if saved_world != world_size:
        how = (f"torchrun --nproc_per_node={saved_world} ... train --resume" if isinstance(saved_world, int)
               and saved_world > 1 else "caltrain train --resume without torchrun")
        raise ValueError(
            f"{path}: the checkpoint was written by {saved_world} process(es) (world size {saved_world}) but this "
            f"resume runs {world_size} (world size {world_size}); the data shards and random streams depend on "
            f"it: resume with {how}"
        )
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        objective.load_state_dict(ckpt["objective"])
        restore_rng(ckpt["rng"], generator)
        if curvature is not None and ckpt.get("curvature") is not None:
            curvature.load_state_dict(ckpt["curvature"])
        return {"start_epoch": int(ckpt["epoch"]) + 1, "step": int(ckpt["step"]), "history": list(ckpt["history"]),
                "best": dict(ckpt["best"])}
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as err:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise ValueError(f"{path}: the checkpoint does not fit this run ({type(err).__name__}: {first})") from None


def _same_run(saved: dict[str, Any], config: dict[str, Any], *, finished: int) -> bool:
    """True when ``config`` continues the run of the checkpoint's ``saved`` configuration after ``finished``
    epochs: equal but for the keys that do not change results, and ``epochs`` when it grows past ``finished``."""
    from caltrain.train.run_dir import result_config

    saved, config = result_config(saved), result_config(config)
    if config.get("epochs", 0) > finished:  # extending (or the run as it was): the rest must match
        saved.pop("epochs", None)
        config.pop("epochs", None)
    return saved == config
