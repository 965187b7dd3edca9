"""Checks of command-line arguments shared by the subcommands; each error names the option at fault."""

from __future__ import annotations

from pathlib import Path

__all__ = ["check_int_range", "check_out_dir"]


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
