"""Atomic file writes and reading of prediction files.

Every result file caltrain writes goes through :func:`atomic_write`: the content is written to a temporary
file in the same directory, flushed and fsync'ed, then renamed over the target, so an interrupted run never
leaves a half-written file behind (a reader sees the old file or the new one).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "append_jsonl",
    "call_atomically",
    "load_arrays",
    "read_json",
    "remove_stale_temp_files",
    "save_npz",
    "to_jsonable",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file next to ``path``; on clean exit it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


#: The name :func:`atomic_write` gives its temporary file next to ``<target>``: ``.<target>.XXXXXXXX.tmp``, the
#: ``XXXXXXXX`` being ``tempfile.mkstemp``'s 8 random characters (``[a-z0-9_]``). A process killed between the
#: write and the rename leaves such a file behind; :func:`remove_stale_temp_files` matches exactly this name.
TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left in ``directory`` (not recursive); returns them.

    Only names matching :data:`TEMP_NAME` are removed, and only regular files (no links, no folders). Call it
    only when no process writes into ``directory`` (e.g. when a run resumes), or an in-flight write would fail.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in os.scandir(directory):
        if TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert tensors, NumPy scalars/arrays, paths and tuples to plain JSON types (recursively)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch = None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if torch is not None and isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().numpy())
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None if obj != obj else obj  # NaN -> null; json writes inf as Infinity
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (tensors and arrays converted)."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent, sort_keys=False) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path``, rewriting the whole file atomically (logs are small)."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    line = json.dumps(to_jsonable(record)) + "\n"
    atomic_write_bytes(path, old + line.encode("utf-8"))


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """Save arrays (tensors converted) to a compressed ``.npz`` atomically."""
    converted = {}
    for key, value in arrays.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        converted[key] = np.asarray(value)
    buf = io.BytesIO()
    np.savez_compressed(buf, **converted)
    atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``.npz`` file or a ``.pt`` file holding a dict of tensors/arrays into NumPy arrays.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is neither ``.npz`` nor ``.pt``/``.pth``, a ``.pt`` file is not a dict, or the file
            cannot be read as its suffix says (a directory, a truncated or corrupt file, object arrays).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path}: expected a .npz or .pt file, got a directory")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        import zipfile

        if not zipfile.is_zipfile(path):  # np.load would try to unpickle it and blame pickling
            raise ValueError(f"{path}: not a NumPy .npz archive (not a zip file: truncated, corrupt or mislabelled?)")
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read the .npz archive ({type(err).__name__}: {err})") from err
    if suffix in (".pt", ".pth"):
        import torch

        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises RuntimeError, UnpicklingError, KeyError, ... on a bad file
            raise ValueError(
                f"{path}: not a readable torch file (corrupt, truncated or not from torch.save?): "
                f"{type(err).__name__}: {err}"
            ) from err
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: expected a dict of arrays, got {type(obj).__name__}")
        out: dict[str, np.ndarray] = {}
        for k, v in obj.items():
            out[str(k)] = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        return out
    raise ValueError(f"{path}: expected a .npz or .pt file, got suffix {suffix!r}")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def call_atomically(path: str | os.PathLike, writer: Callable[[Any], None], mode: str = "wb") -> None:
    """Run ``writer(fh)`` on a temporary file that replaces ``path`` atomically (e.g. ``torch.save``)."""
    with atomic_write(path, mode) as fh:
        writer(fh)
