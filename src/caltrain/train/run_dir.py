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
      examples_test.npz  dense tasks, instead of the logits: a few test images, masks, probability maps
                         (:mod:`caltrain.train.dense`)
      reliability_test.json
                         dense tasks: the test split's pooled bin statistics, before and after each calibrator
      sample_state.npz   the objective's per-sample state at the end (``sample_state``: ASLP's per-image alpha,
                         SAT's and Socrates' target tables, GenCE's EMA), by dataset index of the training split
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

Trust: what caltrain writes, overwrites and reuses
--------------------------------------------------

Three more files make a run directory safe to reuse::

    RUN_DIR/
      .caltrain-run      the marker: "caltrain wrote this folder" (written first, with config.yaml)
      .caltrain-lock     the lock file: ``fcntl.flock`` is held on it while a process writes the run; it holds
                         the holder's pid, host and start time (never deleted: deleting a lock file races)
      fingerprint.json   what the results depend on: the SHA-256 of the resolved configuration (canonical JSON,
                         sorted keys, without :data:`NON_RESULT_KEYS`), caltrain's version and git revision

    SUITE_DIR/
      stale/<run>.<YYYYmmdd-HHMMSS>/   runs set aside because their configuration or code changed

- **Overwrite** (:meth:`RunDir.clear`, ``caltrain train --out DIR --overwrite``): only a folder that holds
  nothing but the lock file, or one with caltrain's marker (runs written before the marker: a ``meta.json``
  with ``caltrain_version``). Even then only the entries :meth:`RunDir.known_entries` names are removed (and
  caltrain's temporary files); a foreign file among them refuses the whole overwrite, naming it
  (:class:`ForeignFilesError`, exit status 2). A suite folder (``caltrain bench --out``) must be absent, empty,
  hold ``suite.json``, or hold only names :class:`SuiteDir` knows; a suite never deletes: it replaces
  ``suite.json``, ``results.*`` and its report, and moves stale runs to ``stale/``.
- **Reuse** (:meth:`RunDir.stale_reason`): a suite skips or resumes a run only when its fingerprint equals the
  one it would write now. The code part compares ``caltrain.__version__``, and the git revision (HEAD) of the
  caltrain checkout when both the run's and the current one are known: a commit makes earlier runs stale
  (caltrain cannot tell which commits change results), uncommitted edits do not (a "-dirty" flag says nothing
  about what changed, and would make every rerun stale). A run written before fingerprints is reused only when
  its ``config.yaml`` equals the resolved configuration (as dicts, without :data:`NON_RESULT_KEYS`). A stale
  run is moved, whole, to ``SUITE_DIR/stale/`` (never deleted), the suite says so and reruns it.
- **Locks** (:meth:`RunDir.lock`): a process writing a run holds an exclusive, non-blocking ``flock`` on its
  ``.caltrain-lock`` for the whole run; the operating system releases it when the process dies (``kill -9``
  leaves no stale lock). A second writer fails with :class:`RunLockedError` naming the holder (exit status 2);
  a suite worker skips a run another process holds and comes back to it (waiting for the lock) at the end, so
  two workers share one grid and each ends with the complete aggregate. The lock is re-entrant within a
  process (the CLI takes it before an overwrite, the trainer again around the run) and is taken by the main
  process only under ``torchrun``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from caltrain.utils.io import atomic_write_json, atomic_write_text, read_json

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None

__all__ = [
    "NON_RESULT_KEYS", "RESULTS_FORMATS", "ForeignFilesError", "RunDir", "RunDirError", "RunLockedError", "SuiteDir",
    "code_version", "config_hash", "git_revision", "result_config",
]

#: Top-level configuration keys that do not change a run's results (progress output, CPU threads, how often a
#: checkpoint is saved): left out of the fingerprint and of the checkpoint's configuration check, so changing
#: them neither makes a run stale nor stops a resume.
NON_RESULT_KEYS = ("quiet", "threads", "checkpoint_every")

#: The formats of a suite's aggregate ``results.<format>`` files.
RESULTS_FORMATS = ("csv", "md", "json")


class RunDirError(ValueError):
    """A run or suite folder caltrain refuses to write, overwrite or share (exit status 2 at the command line)."""


class ForeignFilesError(RunDirError):
    """The folder holds a file caltrain did not write (the message names the first one)."""


class RunLockedError(RunDirError):
    """Another process holds the folder's lock (the message names its pid and host)."""


def result_config(config_dict: dict[str, Any]) -> dict[str, Any]:
    """``config_dict`` (``config_to_dict``) without the :data:`NON_RESULT_KEYS`."""
    return {k: v for k, v in config_dict.items() if k not in NON_RESULT_KEYS}


def config_hash(config_dict: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of :func:`result_config`."""
    text = json.dumps(result_config(config_dict), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The code a run's results depend on: ``caltrain_version`` and ``git_revision`` (HEAD of the caltrain
    checkout, without the "-dirty" flag; None when caltrain is not run from a git checkout). Read once per
    process."""
    import caltrain

    rev = git_revision()
    return {"caltrain_version": caltrain.__version__, "git_revision": rev.removesuffix("-dirty") if rev else None}


def _code_differs(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    if old.get("caltrain_version") != new["caltrain_version"]:
        return f"caltrain {old.get('caltrain_version')} -> {new['caltrain_version']}"
    if old.get("git_revision") and new["git_revision"] and old["git_revision"] != new["git_revision"]:
        return f"git revision {old['git_revision'][:12]} -> {new['git_revision'][:12]}"
    return None


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _config_changes(old: dict[str, Any], new: dict[str, Any], limit: int = 3) -> str:
    """The first ``limit`` differing keys, as ``key old -> new``."""
    a, b = _flat(result_config(old)), _flat(result_config(new))
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))
    parts = [f"{k} {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in keys[:limit]]
    return ", ".join(parts) + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def _is_temp_of(name: str, known: set[str]) -> bool:
    """True for ``caltrain.utils.io.atomic_write``'s temporary files ``.<known name>.<random>.tmp``."""
    return name.startswith(".") and name.endswith(".tmp") and any(name[1:].startswith(k + ".") for k in known)


def _foreign(folder: Path, known: set[str], subfolders: dict[str, str]) -> list[Path]:
    """Entries of ``folder`` caltrain did not write: names outside ``known`` (and their temporary files), and
    in each sub-folder of ``subfolders`` (name -> file suffix) anything but ``*<suffix>`` files."""
    out = []
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        real_dir = p.is_dir() and not p.is_symlink()
        if p.name in subfolders and real_dir:
            suffix = subfolders[p.name]
            out += [q for q in sorted(p.iterdir())
                    if not (q.is_file() and (q.name.endswith(suffix) or q.name.endswith(".tmp")))]
        elif p.name in subfolders or real_dir or not (p.name in known or _is_temp_of(p.name, known)):
            out.append(p)  # a file caltrain never writes, or a folder where it writes a file
    return out


_HELD: dict[str, list[Any]] = {}  # lock file (real path) -> [fd, depth]: the locks this process holds


def _describe_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process (it has not written its pid yet)"
    return f"pid {info.get('pid')} on host {info.get('host')} (since {info.get('since')})"


def _acquire(path: Path, wait: bool, what: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"{what} is in use: {holder} is writing it; wait for it to finish (or stop that process)"
            ) from None
        try:  # the folder may have been replaced while this process waited: lock the file at the path now
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, info.encode("utf-8") + b"\n", 0)  # in place: replacing the file would drop the lock
    return fd


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool, what: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (re-entrant within this process)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    fd = _acquire(path, wait, what)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


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
    marker = _entry(".caltrain-run")
    lockfile = _entry(".caltrain-lock")
    fingerprint = _entry("fingerprint.json")

    #: Every name a run directory may hold (``calibrators`` holds ``*.json``, ``report_files`` ``*.png``).
    KNOWN = ("config.yaml", "meta.json", "labels.json", "metrics.jsonl", "checkpoint.pt", "best.pt", "summary.json",
             "calibrators", ".caltrain-run", ".caltrain-lock", "fingerprint.json", "logits_val.npz",
             "logits_test.npz", "logits_ood.npz", "examples_test.npz", "reliability_test.json", "sample_state.npz", "report.html", "report.md",
             "report_files")
    _SUBFOLDERS = {"calibrators": ".json", "report_files": ".png"}

    def logits(self, split: str) -> Path:
        """``logits_<split>.npz`` (``split``: "val", "test" or "ood")."""
        return self.root / f"logits_{split}.npz"

    def examples(self, split: str) -> Path:
        """``examples_<split>.npz``: a dense run's example images, masks and probability maps (``split``: "test")."""
        return self.root / f"examples_{split}.npz"

    @property
    def sample_state(self) -> Path:
        """``sample_state.npz``: the objective's per-sample tables at the end of the run (when it has any)."""
        return self.root / "sample_state.npz"

    def reliability(self, split: str) -> Path:
        """``reliability_<split>.json``: a dense run's pooled bin statistics (``split``: "test")."""
        return self.root / f"reliability_{split}.json"

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

    # ------------------------------------------------------------ trust
    def lock(self, *, wait: bool = False) -> contextlib.AbstractContextManager[None]:
        """Hold the run's lock (``.caltrain-lock``; module docstring): raises :class:`RunLockedError` naming the
        holder when another process has it, or waits for it when ``wait``. Creates the folder."""
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"{self.root} is a file, not a run directory")
        return _locked(self.lockfile, wait=wait, what=self.root)

    def write_marker(self) -> None:
        """Write ``.caltrain-run``: the folder is a caltrain run (what :meth:`clear` requires)."""
        import caltrain

        atomic_write_json(self.marker, {"caltrain_version": caltrain.__version__, "kind": "run"})

    def write_fingerprint(self, config_dict: dict[str, Any], code: dict[str, Any] | None = None) -> None:
        """Write ``fingerprint.json`` for ``config_dict`` (``config_to_dict``) and ``code`` (default: the
        running :func:`code_version`)."""
        atomic_write_json(self.fingerprint, {"config_sha256": config_hash(config_dict), **(code or code_version()),
                                             "ignored_keys": list(NON_RESULT_KEYS)})

    def read_fingerprint(self) -> dict[str, Any] | None:
        """``fingerprint.json``, or None (runs written before fingerprints)."""
        return read_json(self.fingerprint) if self.fingerprint.is_file() else None

    def has_results(self) -> bool:
        """True once the run has written anything worth keeping (its configuration, a checkpoint, metrics)."""
        return any(p.exists() for p in (self.config, self.checkpoint, self.metrics, self.summary))

    def stale_reason(self, config_dict: dict[str, Any]) -> str | None:
        """Why the run's results are not those of ``config_dict`` under the running code, or None when they
        are (or when the run has no results yet). Module docstring: the rule."""
        if not self.has_results():
            return None
        old = None
        if self.config.is_file():
            import yaml

            old = yaml.safe_load(self.config.read_text()) or {}
        fp = self.read_fingerprint()
        if fp is None:  # written before fingerprints: reusable only when config.yaml says the same
            if old is None:
                return "no fingerprint.json and no config.yaml"
            if result_config(old) != result_config(config_dict):
                return "configuration changed: " + _config_changes(old, config_dict)
            return None
        if fp.get("config_sha256") != config_hash(config_dict):
            return "configuration changed: " + (_config_changes(old, config_dict) if old else "config.yaml missing")
        code = _code_differs(fp, code_version())
        return f"code changed: {code}" if code else None

    def finished_epochs(self) -> int:
        """The epochs recorded in ``metrics.jsonl`` (0 when none)."""
        return max((int(r["epoch"]) for r in self.read_metrics() if float(r.get("epoch", 0)).is_integer()), default=0)

    def is_empty(self) -> bool:
        """True when the folder is absent or holds nothing but the lock file."""
        return not self.root.is_dir() or all(p.name == self.lockfile.name for p in self.root.iterdir())

    def is_caltrain_run(self) -> bool:
        """True when the folder carries caltrain's marker (or, written before the marker, a ``meta.json`` with
        ``caltrain_version``)."""
        if self.marker.is_file():
            return True
        try:
            return self.meta.is_file() and "caltrain_version" in read_json(self.meta)
        except (ValueError, OSError):
            return False

    def foreign_files(self) -> list[Path]:
        """Entries caltrain did not write (sorted; in ``calibrators/`` and ``report_files/`` too)."""
        return _foreign(self.root, set(self.KNOWN), self._SUBFOLDERS)

    def check_replaceable(self, flag: str = "--out") -> None:
        """Raise :class:`ForeignFilesError` unless :meth:`clear` may empty the folder (module docstring)."""
        if self.is_empty():
            return
        if not self.is_caltrain_run():
            first = sorted(p for p in self.root.iterdir() if p.name != self.lockfile.name)[0]
            raise ForeignFilesError(
                f"{flag} {self.root}: refusing to overwrite a folder caltrain did not write (no {self.marker.name}; "
                f"it holds {first}); choose another directory"
            )
        foreign = self.foreign_files()
        if foreign:
            raise ForeignFilesError(
                f"{flag} {self.root}: refusing to overwrite: {foreign[0]} is not a file caltrain wrote"
                + (f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else "") + "; move it away first"
            )

    def clear(self, flag: str = "--out") -> None:
        """Remove every file the run wrote (after :meth:`check_replaceable`), keeping the folder and its lock file.
        Hold :meth:`lock` around it."""
        import shutil

        self.check_replaceable(flag)
        if not self.root.is_dir():
            return
        for p in self.root.iterdir():
            if p.name == self.lockfile.name:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


@dataclass(frozen=True)
class SuiteDir(_Folder):
    """Paths of the suite directory ``root`` (module docstring: the layout); each run is a :class:`RunDir`."""

    meta = _entry("suite.json")
    runs = _entry("runs")
    stale = _entry("stale")

    #: Every name a suite folder may hold (``report_files`` holds ``*.png``).
    KNOWN = ("suite.json", "runs", "stale", "results.csv", "results.md", "results.json", "report.html", "report.md",
             "report_files")

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

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write ``suite.json`` (atomically): also the marker that caltrain owns the folder."""
        atomic_write_json(self.meta, meta)

    def check_writable(self, flag: str = "--out") -> None:
        """Raise :class:`ForeignFilesError` unless a suite may write here: the folder is absent or empty, holds
        ``suite.json``, or holds a ``runs/`` folder and nothing but names the layout knows."""
        if not self.root.exists() or self.meta.is_file():
            return
        if not self.root.is_dir():
            raise ForeignFilesError(f"{flag} {self.root}: not a directory")
        entries = sorted(self.root.iterdir())
        if not entries:
            return
        foreign = [p for p in entries if p.name not in self.KNOWN]
        if foreign or not self.runs.is_dir():
            first = (foreign or entries)[0]
            raise ForeignFilesError(
                f"{flag} {self.root}: refusing to write a suite into a folder caltrain did not write (no "
                f"{self.meta.name}; it holds {first}); choose another directory"
            )

    def set_aside(self, name: str) -> Path:
        """Move everything of run ``name`` but its lock file to ``stale/<name>.<YYYYmmdd-HHMMSS>/`` (never
        deleted); returns that folder. Hold the run's lock around it."""
        run = self.run(name)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.stale / f"{name}.{stamp}"
        k = 1
        while target.exists():
            k += 1
            target = self.stale / f"{name}.{stamp}-{k}"
        target.mkdir(parents=True)
        for p in sorted(run.root.iterdir()):
            if p.name != run.lockfile.name:
                os.replace(p, target / p.name)
        return target


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
