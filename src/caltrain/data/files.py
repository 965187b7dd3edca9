"""Dataset files on disk: where they are expected, the error when they are missing, and downloads.

Real datasets are read from ``root`` (``caltrain.data.default_root()``: ``$CALTRAIN_DATA_DIR`` or ``./data``),
each in its official layout under a fixed folder name. When a file is missing, :func:`require` raises a
``FileNotFoundError`` that names the absolute path expected, how to get the file and how to point caltrain at
another folder (:data:`WHERE`). Datasets with a stable
official URL (CIFAR-10/100, SVHN) are downloaded when ``download=True`` (their default) and the machine is
online: streamed to a temporary file, checked against the official MD5, then moved into place (and extracted
for archives); offline, the error says where to put the files.

Pickled CIFAR batches are read with a restricted unpickler that only rebuilds NumPy arrays, dicts, lists
and bytes (an arbitrary pickle can run code when loaded).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable

__all__ = ["WHERE", "download", "md5sum", "require", "safe_unpickle"]

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


def download(url: str, dest: Path, *, md5: str, extract_to: Path | None = None, timeout: float = 60.0) -> None:
    """Download ``url`` to ``dest`` (checked against ``md5``); if ``extract_to``, extract the tar archive there.

    Raises:
        FileNotFoundError: the machine is offline or the server failed (the message gives the URL).
        ValueError: the downloaded file's MD5 differs from ``md5``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https/http URLs)
                shutil.copyfileobj(response, tmp)
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
