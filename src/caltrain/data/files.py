"""Dataset files on disk: where they are expected, the error when they are missing, and downloads.

Real datasets are read from ``root`` (``caltrain.data.default_root()``: ``$CALTRAIN_DATA_DIR`` or ``./data``),
each in its official layout under a fixed folder name. When a file is missing, :func:`require` raises a
``FileNotFoundError`` that names the absolute path expected, how to get the file and how to point caltrain at
another folder (:data:`WHERE`). Datasets with a stable
official URL (CIFAR-10/100, SVHN) are downloaded when ``download=True`` (their default) and the machine is
online: streamed to a temporary file (its progress on stderr: size, share, rate and time left), checked
against the official MD5, then moved into place (and extracted for archives); offline, the error says where
to put the files.

Pickled CIFAR batches are read with a restricted unpickler that only rebuilds NumPy arrays, dicts, lists
and bytes (an arbitrary pickle can run code when loaded).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = ["WHERE", "copy_with_progress", "download", "md5sum", "require", "safe_unpickle"]

#: How to tell caltrain where the dataset files are (the options that exist, in every missing-file message).
WHERE = (
    "to read them from another folder, pass --set data.root=DIR to caltrain train / bench, root=DIR to "
    "caltrain.data.create, or set the CALTRAIN_DATA_DIR environment variable"
)


def require(paths: Iterable[Path], *, dataset: str, how: str, root: Path | None = None) -> None:
    """Raise ``FileNotFoundError`` listing the missing ``paths`` (absolute), ``how`` to get them and :data:`WHERE`.

    ``root``, the data directory searched, is named in the message when given.
    """
    missing = [Path(p).expanduser().resolve() for p in paths if not Path(p).exists()]
    if missing:
        listed = ", ".join(str(p) for p in missing[:4])
        if len(missing) > 4:
            listed += f" (and {len(missing) - 4} more)"
        searched = f" (data folder searched: {Path(root).expanduser().resolve()})" if root is not None else ""
        raise FileNotFoundError(f"dataset {dataset!r}: missing {listed}{searched}. {how}; {WHERE}")


def md5sum(path: Path) -> str:
    """The MD5 hex digest of the file at ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stderr_line(text: str, final: bool) -> None:
    """Progress on stderr: rewritten in place on a terminal, one line per step in logs."""
    if sys.stderr.isatty():
        print(f"\r{text}", end="\n" if final else "", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def copy_with_progress(source: Any, target: Any, *, total: int | None, label: str,
                       report: Callable[[str, bool], None] | None = _stderr_line, chunk: int = 1 << 20,
                       now: Callable[[], float] = time.monotonic) -> int:
    """Copy the file-like ``source`` into ``target`` in ``chunk``-byte reads; returns the bytes copied.

    ``report(text, final)`` gets ``"label: 12.0 / 162.6 MB (7%), 3.1 MB/s, about 47 s left"`` (without the
    share and time left when ``total`` is unknown) every 10% of ``total`` (every 10 MB when it is unknown) on
    a log, every second on a terminal, and once more at the end with ``final=True``; ``None`` reports nothing.
    """
    start = last = now()
    done = 0
    step = max(total // 10, 1) if total else 10 << 20
    next_mark = step
    tty = report is _stderr_line and sys.stderr.isatty()

    def text() -> str:
        rate = done / max(now() - start, 1e-9)
        if total:
            left = (total - done) / rate if rate > 0 else float("inf")
            eta = f", about {left:.0f} s left" if done < total and left != float("inf") else ""
            return f"{label}: {_megabytes(done)} / {_megabytes(total)} ({100 * done / total:.0f}%), " \
                   f"{_megabytes(int(rate))}/s{eta}"
        return f"{label}: {_megabytes(done)}, {_megabytes(int(rate))}/s"

    while True:
        block = source.read(chunk)
        if not block:
            break
        target.write(block)
        done += len(block)
        if report is not None and ((tty and now() - last >= 1.0) or (not tty and done >= next_mark)):
            report(text(), False)
            last = now()
            while next_mark <= done:
                next_mark += step
    if report is not None:
        report(text(), True)
    return done


def download(url: str, dest: Path, *, md5: str, extract_to: Path | None = None, timeout: float = 60.0,
             progress: Callable[[str, bool], None] | None = _stderr_line) -> None:
    """Download ``url`` to ``dest`` (checked against ``md5``); if ``extract_to``, extract the tar archive there.

    ``progress`` receives the download's progress lines (:func:`copy_with_progress`; default: stderr, ``None``
    for silence).

    Raises:
        FileNotFoundError: the machine is offline or the server failed (the message gives the URL).
        ValueError: the downloaded file's MD5 differs from ``md5``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https/http URLs)
                length = response.headers.get("Content-Length")
                copy_with_progress(response, tmp, total=int(length) if length and length.isdigit() else None,
                                   label=f"downloading {dest.name}", report=progress)
        except (urllib.error.URLError, OSError) as err:
            tmp.close()
            tmp_path.unlink(missing_ok=True)
            raise FileNotFoundError(f"could not download {url} ({err})") from err
    if md5sum(tmp_path) != md5:
        tmp_path.unlink(missing_ok=True)
        raise ValueError(f"{url}: the downloaded file's MD5 is not the official {md5}; not using it")
    tmp_path.replace(dest)
    if extract_to is not None:
        with tarfile.open(dest) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(extract_to, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                root = extract_to.resolve()
                for member in archive.getmembers():
                    if not (root / member.name).resolve().is_relative_to(root) or member.issym() or member.islnk():
                        raise ValueError(f"{dest}: refusing to extract the unsafe member {member.name!r}")
                archive.extractall(extract_to)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only NumPy arrays and dtypes (plus plain containers, which need no globals)."""

    _ALLOWED = {"_reconstruct", "ndarray", "dtype", "_frombuffer", "scalar"}

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} (only NumPy arrays are expected)")


def safe_unpickle(path: Path) -> Any:
    """Load a pickle made of dicts, lists, bytes and NumPy arrays (CIFAR's format), refusing anything else."""
    with open(path, "rb") as fh:
        return _ArrayUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
