"""``caltrain calibrate``: fit a post-hoc calibrator on validation logits, report it on test logits.

Examples::

    caltrain calibrate --method ts --val val.npz --test test.npz            # table: before / after
    caltrain calibrate --method ts --val val.npz --test test.npz --json     # {"method", "params", "before", "after"}
    caltrain calibrate --method all --val val.npz --test test.npz           # every calibrator in one table
    caltrain calibrate --method dirichlet --set reg_lambda=0.1 --val val.npz --test test.npz
    caltrain calibrate --method ts --abstention renormalized --val val.npz --test test.npz   # K+1 outputs

Both files (``.npz``, or ``.pt`` holding a dict) hold ``logits`` ``[N, C]`` and integer ``labels`` ``[N]`` (a
trainer run writes them as ``logits_val.npz`` / ``logits_test.npz``). "before" and "after" are
:func:`caltrain.metrics.summarize` of the test split, so their keys are those of ``caltrain evaluate --json``.
The fitted calibrator is written to ``--out`` (a file, default ``calibrator-<method>.json``; a directory
there is an error) unless ``--no-save``. With ``--method all`` every fitted calibrator goes into ONE folder,
``--out`` (default ``calibrators/``), one ``<folder>/calibrator-<name>.json`` each; the folder and the paths are
printed (``saved`` in ``--json``). ``--out`` with ``--no-save`` is an error (they conflict). Both are checked
before anything is fitted. Reload a calibrator with ``caltrain.posthoc.load(path)``. Calibrator options are
``--set KEY=VALUE`` (VALUE read as YAML, as everywhere in caltrain).

Deprecated spellings (they work, with a warning on stderr, until the next release): ``--output`` (now
``--out``) and ``--option KEY=VALUE`` (now ``--set``; ``--option`` still reads VALUE as JSON).

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


__all__ = ["DEFAULT_ALL_FOLDER", "EXAMPLES", "add_arguments", "calibrate_files", "output_target", "parse_options",
           "run"]

#: Where ``--method all`` writes its calibrators without ``--out``.
DEFAULT_ALL_FOLDER = "calibrators"

EXAMPLES = (
    ("caltrain calibrate --val runs/r/logits_val.npz --test runs/r/logits_test.npz --method all",
     "every calibrator that fits, in one table; the calibrators go into calibrators/"),
    ("caltrain calibrate --val val.npz --test test.npz --method dirichlet --set reg_lambda=0.01 --out dir.json --json",
     "one calibrator with an option, saved to dir.json; before/after as JSON"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from caltrain.cli._options import (ABSTENTION_CONVENTIONS, CALIBRATABLE, LEGACY_CALIBRATABLE, DeprecatedAlias,
                                       add_device, add_json, add_quiet, add_set)

    parser.add_argument(
        "--method",
        default="ts",
        metavar="NAME",
        help="calibrator name (default ts; a wrong name lists the valid ones), or 'all': every calibrator that fits "
        "the number of classes",
    )
    parser.add_argument("--val", required=True, metavar="FILE",
                        help="file with validation logits and labels (fit on this)")
    parser.add_argument("--test", required=True, metavar="FILE",
                        help="file with test logits and labels (report on this)")
    parser.add_argument("--n-bins", type=int, default=15, metavar="N",
                        help="bins of the binned metrics (default 15)")
    add_set(parser, "calibrator option (repeatable; VALUE read as YAML), e.g. --set reg_lambda=0.1")
    parser.add_argument("--option", dest="option", action=DeprecatedAlias, new="--set (VALUE read as YAML)",
                        append=True, default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--abstention", default=None, choices=(*CALIBRATABLE, *LEGACY_CALIBRATABLE),
        help="K+1 outputs: calibrate the K class logits (renormalized) or all K+1 (with_unknown); "
        "'classes' and 'all' are their deprecated spellings",
    )
    parser.add_argument(
        "--eval-abstention",
        default="with_unknown",
        choices=ABSTENTION_CONVENTIONS,
        help="metric convention with --abstention with_unknown (default with_unknown)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="where to write the fitted calibrator: a JSON file (default calibrator-<method>.json); with "
        f"--method all ONE folder (default {DEFAULT_ALL_FOLDER}/) holding calibrator-<name>.json for each",
    )
    parser.add_argument("--output", dest="out", action=DeprecatedAlias, new="--out", metavar="PATH")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write the fitted calibrator(s) (conflicts with --out)"
    )
    add_device(parser, "cpu", "torch device of the computation: cpu (default), auto, cuda, cuda:N or mps")
    add_quiet(parser, "print the table only (no fitted parameters, timings or saved paths)")
    add_json(parser, "print one JSON object instead of the table")


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: json.loads(v) or v}`` (the deprecated ``--option``); a pair without ``=`` raises
    ``ValueError``. ``--set`` reads VALUE as YAML instead (:func:`caltrain.cli._options.parse_settings`)."""
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

    from caltrain.cli._checks import resolve_device
    from caltrain.utils.io import load_arrays

    device = resolve_device(device)
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
    from caltrain.abstention import CALIBRATABLE, check_convention
    from caltrain.utils.checks import check_choice

    options = dict(options or {})
    check_choice(method, "--method", [*posthoc.names(), "all"])
    if method == "all" and options:
        raise ValueError("--set: calibrator options need a single --method, not 'all'")
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


def output_target(method: str, out: str | None, no_save: bool) -> Path | None:
    """Where the calibrator(s) go: a file (one method) or a folder (``all``); ``None`` with ``--no-save``.

    Checked before anything is fitted: ``--out`` with ``--no-save`` conflict; a single method's ``--out``
    must not be a directory, ``--method all``'s must not be a file (each a ``ValueError`` naming ``--out``).
    """
    if no_save:
        if out is not None:
            raise ValueError(
                f"--out {out!r} and --no-save conflict: drop --no-save to write the calibrator(s) there, or "
                "drop --out"
            )
        return None
    if method == "all":
        folder = Path(out if out is not None else DEFAULT_ALL_FOLDER)
        if folder.exists() and not folder.is_dir():
            raise ValueError(
                f"--out: with --method all it is the folder the calibrators are written into, but {str(folder)!r} "
                "is a file"
            )
        return folder
    path = Path(out if out is not None else f"calibrator-{method}.json")
    if path.is_dir() or (out is not None and out.endswith(("/", "\\"))):
        raise ValueError(
            f"--out: {str(path)!r} is a directory; give a file name, e.g. {str(path / f'calibrator-{method}.json')!r}"
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
            raise ValueError(f"--out: cannot write {str(path)!r}: {err.strerror or err}") from None
    return {name: str(path) for name, path in paths.items()}


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The calibrator's options: ``--set`` (YAML values), then the deprecated ``--option`` (JSON values)."""
    from caltrain.cli._options import parse_settings

    options = parse_settings(list(args.set))
    options.update(parse_options(list(args.option)))
    return options


def run(args: argparse.Namespace) -> int:
    from caltrain.cli.evaluate import format_table
    from caltrain.utils.io import to_jsonable

    target = output_target(args.method, args.out, args.no_save)
    report, fitted = calibrate_files(
        args.method,
        args.val,
        args.test,
        n_bins=args.n_bins,
        options=_options(args),
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
        if args.quiet:
            return 0
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
        if args.quiet:
            return 0
        params = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in report["params"].items())
        print(f"\n{args.method} fitted on {args.val} in {report['fit_seconds']:.3f} s: {params}")
        for w in report["warnings"]:
            print(f"warning: {w}")
    if args.method == "all" and target is not None:
        print(f"saved {len(saved)} calibrators into {target}/")
    for name, path in saved.items():
        print(f"saved {name} to {path}", file=sys.stdout)
    return 0
