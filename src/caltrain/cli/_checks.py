"""Checks of command-line arguments shared by the subcommands; each error names the option at fault."""

from __future__ import annotations

from pathlib import Path

__all__ = ["check_int_range", "check_out_dir", "resolve_device"]


def check_out_dir(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a :class:`Path` if it can be (or already is) a directory, else ``ValueError`` naming ``option``.

    Refuses an existing file (it is never replaced, not even with ``--overwrite``) and a path below a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is an existing file, not a directory; give a directory path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{option} {path}: {parent} is a file, so no directory can be made below it")
            break
    return path


def check_int_range(value: int, option: str, *, low: int, high: int | None = None, why: str = "") -> int:
    """``value`` if ``low <= value <= high`` (``high`` None: no upper bound), else ``ValueError`` naming ``option``."""
    if value < low:
        raise ValueError(f"{option}: expected an integer >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{option}: expected at most {high:,}, got {value:,}" + (f" ({why})" if why else ""))
    return value


def resolve_device(device: str, option: str = "--device") -> str:
    """The torch device ``device`` names on this machine, else ``ValueError`` naming ``option``.

    ``auto`` is CUDA when a GPU is visible, else the CPU (as the trainer's ``device: auto``); ``cpu``, ``cuda``,
    ``cuda:N`` and ``mps`` must exist here (``cuda`` on a machine without a GPU is an error, not a fall-back).
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:  # an unknown device string, or CUDA not available
        raise ValueError(f"{option}: cannot use {device!r} ({err}); expected auto, cpu, cuda, cuda:N or mps") from None
    return device
