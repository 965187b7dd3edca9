"""``caltrain calibrate``: fit a post-hoc calibrator on validation logits, report it on test logits.

Examples::

    caltrain calibrate --method ts --val val.npz --test test.npz            # table: before / after
    caltrain calibrate --method ts --val val.npz --test test.npz --json     # {"method", "params", "before", "after"}
    caltrain calibrate --method all --val val.npz --test test.npz           # every calibrator in one table
    caltrain calibrate --method dirichlet --option reg_lambda=0.1 --val val.npz --test test.npz
    caltrain calibrate --method ts --abstention renormalized --val val.npz --test test.npz   # K+1 outputs

Both files (``.npz``, or ``.pt`` holding a dict) hold ``logits`` ``[N, C]`` and integer ``labels`` ``[N]`` (a
trainer run writes them as ``logits_val.npz`` / ``logits_test.npz``). "before" and "after" are
:func:`caltrain.metrics.summarize` of the test split, so their keys are those of ``caltrain evaluate --json``.
The fitted calibrator is written to ``--output`` (a file, default ``calibrator-<method>.json``; a directory
there is an error) unless ``--no-save``. With ``--method all`` every fitted calibrator goes into ONE folder,
``--output`` (default ``calibrators/``), one ``<folder>/calibrator-<name>.json`` each; the paths are printed
(``saved`` in ``--json``). ``--output`` with ``--no-save`` is an error (they conflict). Both are checked before
anything is fitted. Reload a calibrator with ``caltrain.posthoc.load(path)``.

Abstention (K+1) outputs (conventions of :mod:`caltrain.abstention`): ``--abstention renormalized`` calibrates the K class logits (the last logit is dropped,
"before" is the softmax over the K class logits; the saved calibrator takes the K class logits);
``--abstention with_unknown`` calibrates all K+1 logits and evaluates both sides with ``--eval-abstention`` (default
``with_unknown``). Fitting and scoring are :func:`caltrain.posthoc.compare`'s (conventions ``renormalized`` and
``with_unknown`` of :mod:`caltrain.abstention`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from caltrain.abstention import ABSTENTION_CONVENTIONS, CALIBRATABLE, check_convention

__all__ = ["DEFAULT_ALL_FOLDER", "add_arguments", "calibrate_files", "output_target", "parse_options", "run"]

EVAL_ABSTENTION = ABSTENTION_CONVENTIONS  # the metrics' K+1 evaluation conventions
#: Where ``--method all`` writes its calibrators without ``--output``.
DEFAULT_ALL_FOLDER = "calibrators"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from caltrain import posthoc

    parser.add_argument(
        "--method",
        default="ts",
        choices=[*posthoc.names(), "all"],
        help="calibrator (default ts); 'all' compares every calibrator that fits the number of classes",
    )
    parser.add_argument("--val", required=True, help="file with validation logits and labels (fit on this)")
    parser.add_argument("--test", required=True, help="file with test logits and labels (report on this)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n-bins", type=int, default=15, help="bins of the binned metrics (default 15)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="calibrator option (repeatable; VALUE read as JSON, else a string), e.g. reg_lambda=0.1",
    )
    parser.add_argument(
        "--abstention", default=None, choices=("renormalized", "with_unknown", "classes", "all"),
        help="K+1 outputs: calibrate the K class logits (renormalized) or all K+1 (with_unknown); "
        "'classes' and 'all' are their deprecated spellings",
    )
    parser.add_argument(
        "--eval-abstention",
        default="with_unknown",
        choices=EVAL_ABSTENTION,
        help="metric convention with --abstention with_unknown (default with_unknown)",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="where to write the fitted calibrator: a JSON file (default calibrator-<method>.json); with "
        f"--method all ONE folder (default {DEFAULT_ALL_FOLDER}/) holding calibrator-<name>.json for each",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="do not write the fitted calibrator(s) (conflicts with --output)"
    )
    parser.add_argument("--device", default="cpu", help="torch device of the computation (default cpu)")


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: json.loads(v) or v}``; a pair without ``=`` raises ``ValueError``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--option: expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _load_split(path: str, device: str) -> tuple[Any, Any]:
    import numpy as np
    import torch

    from caltrain.utils.io import load_arrays

    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:  # an unknown device string, or CUDA not available
        raise ValueError(f"--device: cannot use {device!r} ({err})") from err
    arrays = load_arrays(path)
    missing = [k for k in ("logits", "labels") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: expected arrays 'logits' and 'labels', missing {missing}; found {sorted(arrays)}")
    for key, kinds, what in (("logits", "fiub", "real numbers"), ("labels", "iub", "integer class indices")):
        kind = np.asarray(arrays[key]).dtype.kind if not torch.is_tensor(arrays[key]) else (
            "f" if arrays[key].is_floating_point() else "c" if arrays[key].is_complex() else "i"
        )
        if kind not in kinds or (key == "labels" and kind == "b"):
            raise ValueError(f"{path}: {key}: expected {what}, got an array of dtype {arrays[key].dtype}")
    logits = torch.as_tensor(arrays["logits"]).to(device=device, dtype=torch.float64)
    labels = torch.as_tensor(arrays["labels"]).to(device=device)
    return logits, labels




def calibrate_files(
    method: str,
    val: str,
    test: str,
    *,
    n_bins: int = 15,
    options: dict[str, Any] | None = None,
    abstention: str | None = None,
    eval_abstention: str = "with_unknown",
    device: str = "cpu",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit ``method`` (or every calibrator for ``"all"``) on ``val``, evaluate on ``test``, with
    :func:`caltrain.posthoc.compare`.

    Args:
        method: a calibrator name, or ``"all"`` (every calibrator that fits the number of classes; one failing
            is reported in its entry, not raised).
        val, test: ``.npz``/``.pt`` files with ``logits [N, C]`` and ``labels [N]``.
        n_bins: bins of the binned metrics.
        options: keyword options of the calibrator (a single ``method`` only).
        abstention: K + 1 outputs: ``"renormalized"`` (calibrate the K class logits) or ``"with_unknown"`` (all
            K + 1); the old spellings ``"classes"``/``"all"`` warn and mean the same.
        eval_abstention: metric convention of the K + 1 columns with ``abstention="with_unknown"``.
        device: torch device of the computation.

    Returns ``(report, calibrators)``: the JSON-able report (``{"method", "params", "before", "after",
    "fit_seconds", "warnings"}`` for one method; ``{"method": "all", "before", "results": {name: {...}}}`` for
    all) and the fitted calibrators by name.
    """
    from caltrain import posthoc

    options = dict(options or {})
    if method == "all" and options:
        raise ValueError("--option: calibrator options need a single --method, not 'all'")
    abstention = check_convention(abstention, "--abstention", choices=CALIBRATABLE)
    val_z, val_y = _load_split(val, device)
    test_z, test_y = _load_split(test, device)
    if val_z.ndim != 2 or test_z.ndim != 2 or val_z.shape[1] != test_z.shape[1]:
        raise ValueError(
            f"--val/--test: expected logits [N, C] with the same C, got {tuple(val_z.shape)} and {tuple(test_z.shape)}"
        )
    num_classes = test_z.shape[1] - (1 if abstention else 0)
    # bad data is the user's error, not one calibrator's failure: checked here, naming the file, for one method
    # and for all (where compare records a calibrator's own failure and goes on)
    from caltrain.posthoc.base import MIN_FIT_SAMPLES
    from caltrain.utils.checks import check_finite, check_labels, check_ndim, check_same_length

    if val_z.shape[0] < MIN_FIT_SAMPLES:
        raise ValueError(
            f"{val}: logits: expected at least {MIN_FIT_SAMPLES} validation samples to fit a calibrator, got "
            f"{val_z.shape[0]}"
        )
    if test_z.shape[0] < 1:
        raise ValueError(f"{test}: logits: expected at least one test sample, got an empty split")
    # label bounds: the calibrators' (with abstention="with_unknown" a validation label may be the abstention
    # class) and the metrics' (test labels are real classes)
    val_classes = val_z.shape[1] - (1 if abstention == "renormalized" else 0)
    for path, z, y, classes in ((val, val_z, val_y, val_classes), (test, test_z, test_y, num_classes)):
        check_finite(z, f"{path}: logits")
        check_ndim(y, f"{path}: labels", 1, "[N]")
        check_same_length(z, y, f"{path}: logits", "labels")
        check_labels(y, classes, f"{path}: labels")
    names = posthoc.names(num_classes=num_classes) if method == "all" else [method]
    result = posthoc.compare(
        (val_z, val_y), (test_z, test_y), names, n_bins=n_bins, abstention=abstention,
        eval_abstention=eval_abstention, options={method: options} if options else None,
        on_error="record" if method == "all" else "raise", capture_warnings=True,
    )
    results: dict[str, Any] = {}
    for name in names:
        if name in result.errors:
            results[name] = {"error": result.errors[name]}
            continue
        results[name] = {
            "params": result.params[name],
            "after": result.metrics[name],
            "fit_seconds": result.fit_seconds[name],
            "warnings": result.warnings[name],
        }
    before = result.uncalibrated
    if method == "all":
        return {"method": "all", "before": before, "results": results}, result.calibrators
    one = results[method]
    report = {"method": method, "params": one["params"], "before": before, "after": one["after"]}
    report.update(fit_seconds=one["fit_seconds"], warnings=one["warnings"])
    return report, result.calibrators


def output_target(method: str, output: str | None, no_save: bool) -> Path | None:
    """Where the calibrator(s) go: a file (one method) or a folder (``all``); ``None`` with ``--no-save``.

    Checked before anything is fitted: ``--output`` with ``--no-save`` conflict; a single method's ``--output``
    must not be a directory, ``--method all``'s must not be a file (each a ``ValueError`` naming ``--output``).
    """
    if no_save:
        if output is not None:
            raise ValueError(
                f"--output {output!r} and --no-save conflict: drop --no-save to write the calibrator(s) there, or "
                "drop --output"
            )
        return None
    if method == "all":
        folder = Path(output if output is not None else DEFAULT_ALL_FOLDER)
        if folder.exists() and not folder.is_dir():
            raise ValueError(
                f"--output: with --method all it is the folder the calibrators are written into, but {str(folder)!r} "
                "is a file"
            )
        return folder
    path = Path(output if output is not None else f"calibrator-{method}.json")
    if path.is_dir() or (output is not None and output.endswith(("/", "\\"))):
        raise ValueError(
            f"--output: {str(path)!r} is a directory; give a file name, e.g. {str(path / f'calibrator-{method}.json')!r}"
        )
    return path


def _save(fitted: dict[str, Any], method: str, target: Path) -> dict[str, str]:
    if method == "all":
        paths = {name: target / f"calibrator-{name}.json" for name in fitted}
    else:
        paths = {method: target}
    for name, path in paths.items():
        try:
            fitted[name].save(path)
        except OSError as err:  # a parent that is a file, no permission, a full disk
            raise ValueError(f"--output: cannot write {str(path)!r}: {err.strerror or err}") from None
    return {name: str(path) for name, path in paths.items()}


def run(args: argparse.Namespace) -> int:
    from caltrain.cli.evaluate import format_table
    from caltrain.utils.io import to_jsonable

    target = output_target(args.method, args.output, args.no_save)
    report, fitted = calibrate_files(
        args.method,
        args.val,
        args.test,
        n_bins=args.n_bins,
        options=parse_options(args.option),
        abstention=args.abstention,
        eval_abstention=args.eval_abstention,
        device=args.device,
    )
    saved = {} if target is None else _save(fitted, args.method, target)
    if args.json:
        if saved:
            report["saved"] = saved if args.method == "all" else saved[args.method]
        print(json.dumps(to_jsonable(report), indent=2))
        return 0
    if args.method == "all":
        columns = {"uncalibrated": report["before"]}
        columns.update({name: r["after"] for name, r in report["results"].items() if "after" in r})
        print(format_table(columns))
        print()
        for name, r in report["results"].items():
            if "error" in r:
                print(f"{name}: failed: {r['error']}")
                continue
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
            print(f"{name} ({r['fit_seconds']:.3f} s): {params}")
            for w in r["warnings"]:
                print(f"  warning: {w}")
    else:
        print(format_table({"before": report["before"], "after": report["after"]}))
        params = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in report["params"].items())
        print(f"\n{args.method} fitted on {args.val} in {report['fit_seconds']:.3f} s: {params}")
        for w in report["warnings"]:
            print(f"warning: {w}")
    if args.method == "all" and target is not None:
        print(f"saved {len(saved)} calibrators into {target}/")
    for name, path in saved.items():
        print(f"saved {name} to {path}", file=sys.stdout)
    return 0
