"""``caltrain train``: one run, from flags, a YAML file and ``key=value`` overrides; or ``--resume RUN_DIR``.

``--out DIR --overwrite`` replaces only a caltrain run (``RunDir.clear``: its marker, and no foreign file);
``--resume RUN`` accepts ``--epochs N`` (train longer: N above the epochs already trained, and a schedule that
does not depend on the total, i.e. not cosine), ``--quiet`` and ``--json``, and refuses every other option.
The run's lock is held from the overwrite to the end of the run (``RunDir.lock``).
``--import MODULE`` (repeatable) imports a module or ``.py`` file of yours before the configuration is built;
the imports are recorded in ``meta.json`` and ``--resume`` imports them again (docs/suites.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

__all__ = ["ACCEPTS_OVERRIDES", "EXAMPLES", "add_arguments", "run"]

#: ``--section.key=value`` arguments are configuration overrides.
ACCEPTS_OVERRIDES = True

EXAMPLES = (
    ("caltrain train --loss focal --epochs 5 --out runs/focal",
     "focal loss on the embedded synthetic data; summary and post-hoc calibrators at the end"),
    ("caltrain train --data digits --loss mbls --set loss.options.margin=6 --device cpu --json",
     "one hyperparameter set from the command line; the summary as JSON"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from caltrain.cli._options import add_device, add_imports, add_json, add_quiet, add_set

    p.add_argument("--config", metavar="FILE", help="YAML configuration (see docs/training.md)")
    p.add_argument("--data", metavar="NAME", help="dataset (caltrain data); default synthetic. Real datasets are read "
                   "from --set data.root=DIR, else $CALTRAIN_DATA_DIR, else ./data")
    p.add_argument("--model", metavar="NAME", help="model (caltrain models); default: mlp for features, cnn for images")
    p.add_argument("--loss", metavar="NAME", help="objective (caltrain losses); default ce")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs to train (default: the configuration's, 10); with "
                   "--resume, more than the run has trained to train it longer")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the data split, the initialisation and the batch "
                   "order, 0 to 2^31-1 (default 0)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: ./runs/<data>-<loss>-s<seed>-<time>)")
    add_set(p, "override any configuration key, VALUE read as YAML, e.g. --set optim.lr=0.05 --set "
               "loss.options.gamma=3 (also accepted as --optim.lr=0.05)")
    add_device(p, None, "where to train: auto (CUDA when available, else CPU; the default), cpu, cuda, cuda:N or mps; "
                        "the same as --set device=DEVICE")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint "
                   "(with --epochs N: train a run longer)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run directory (only one caltrain wrote, holding no other file)")
    add_quiet(p, "no progress output (the summary is still printed at the end)")
    add_json(p, "print the summary as JSON at the end")
    add_imports(p, "for the configuration to name")


def _overrides(args: argparse.Namespace) -> list[str]:
    flags = {"data": "data.name", "model": "model.name", "loss": "loss.name", "epochs": "epochs", "seed": "seed",
             "device": "device"}
    out = [f"{key}={getattr(args, flag)}" for flag, key in flags.items() if getattr(args, flag) is not None]
    if args.quiet:
        out.append("quiet=true")
    return out + list(args.set) + list(getattr(args, "extra_overrides", []))


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as locks:  # the run directory's lock, from the overwrite to the end of the run
        return _run(args, locks)


def _run(args: argparse.Namespace, locks: contextlib.ExitStack) -> int:
    import json

    from caltrain.cli._checks import check_out_dir
    from caltrain.train.config import build_config, check_data, check_device
    from caltrain.train.run_dir import RunDir
    from caltrain.train.trainer import TrainingDiverged, train
    from caltrain.utils.io import read_json
    from caltrain.utils.plugins import import_modules, record_in_meta

    imports = import_modules(getattr(args, "imports", []))  # before any configuration is built or read
    if args.resume:
        run_dir = RunDir(Path(args.resume))
        if not run_dir.root.exists():
            raise FileNotFoundError(f"--resume {args.resume}: no such run directory")
        if not run_dir.root.is_dir():
            raise ValueError(f"--resume {args.resume}: is a file, not a run directory")
        if not run_dir.config.exists():
            raise FileNotFoundError(f"--resume {args.resume}: no config.yaml there (not a caltrain run directory)")
        _refuse_options_with_resume(args)
        if run_dir.meta.is_file():  # the modules the run was started with, then those given now
            imports = import_modules([*read_json(run_dir.meta).get("imports", []), *imports])
        locks.enter_context(run_dir.lock())
        config, resume = _resume(run_dir, args)
        if config is None:
            return 0
    else:
        if args.config is not None and not Path(args.config).exists():
            raise FileNotFoundError(f"--config {args.config}: no such file")
        config = build_config(args.config, overrides=_overrides(args))
        check_device(config)  # device=cuda without a GPU: one message, before any data or model work
        check_data([config])  # missing dataset files: one message, before the run directory is touched
        if args.out:
            run_dir = RunDir(check_out_dir(args.out))
        elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError("--out: required under torchrun (each process would otherwise time-stamp its own directory)")
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = RunDir(Path("runs") / f"{config.data.name}-{config.loss.name}-s{config.seed}-{stamp}")
        main = int(os.environ.get("RANK", "0")) == 0  # under torchrun rank 0 checks, clears and locks
        if main and not run_dir.is_empty():
            if not args.overwrite:
                hint = " (use --resume to continue it)" if not run_dir.is_complete() else ""
                raise ValueError(
                    f"--out {run_dir.root}: the directory is not empty{hint}; pass --overwrite to replace it")
            run_dir.check_replaceable()  # before the lock file is created in a folder caltrain does not own
        if main:
            locks.enter_context(run_dir.lock())
        if main and not run_dir.is_empty():
            run_dir.clear()  # only the files the run wrote: RunDir.clear refuses a foreign one
        resume = False
    try:
        summary = train(config, run_dir.root, resume=resume)
    except TrainingDiverged as err:
        print(f"caltrain train: {err}", file=sys.stderr)
        return 3
    finally:
        if int(os.environ.get("RANK", "0")) == 0:
            record_in_meta(run_dir.root, imports)  # meta.json: what --resume and a reader must import again
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        test = summary["test"]
        line = ", ".join(f"{k} {test[k]:.4f}" for k in ("accuracy", "ece", "adaece", "nll", "brier") if k in test)
        print(f"{run_dir.root}: test {line}")
        for name, m in summary["posthoc"].items():
            print(f"  after {name}: ece {m['ece']:.4f}, nll {m['nll']:.4f}")
    return 0


#: The options ``--resume`` refuses (a resumed run keeps its configuration), as written on the command line.
_NOT_WITH_RESUME = {"config": "--config", "data": "--data", "model": "--model", "loss": "--loss", "seed": "--seed",
                    "out": "--out", "overwrite": "--overwrite", "device": "--device"}


def _refuse_options_with_resume(args: argparse.Namespace) -> None:
    """Exit 2 naming the first option that cannot change on resume (they were silently ignored before)."""
    given = [flag for key, flag in _NOT_WITH_RESUME.items() if getattr(args, key, None) not in (None, False)]
    given += [f"--set {s}" for s in args.set] + [f"--{s}" for s in getattr(args, "extra_overrides", [])]
    if given:
        raise ValueError(
            f"--resume {args.resume}: {given[0]} cannot be combined with --resume (a resumed run keeps its "
            "configuration; only --epochs N to train longer, --quiet and --json apply). Start a new run with --out "
            "to change it"
        )


def _resume(run_dir, args: argparse.Namespace):
    """The configuration a resume continues with and whether a checkpoint exists; ``(None, False)`` when there
    is nothing to do. Extending (``--epochs N``) rewrites ``config.yaml`` and ``fingerprint.json`` and removes
    a complete run's ``summary.json`` (its end is redone). Call under the run's lock."""
    from caltrain.train.config import ConfigError, build_config, check_data, check_device, config_to_dict

    try:
        stored = build_config(run_dir.config)
    except ConfigError as err:  # a hand-edited or damaged config.yaml: say which run it belongs to
        raise ConfigError(f"--resume {args.resume}: {err}") from None
    overrides = ["quiet=true"] if args.quiet else []
    extend = args.epochs is not None and args.epochs != stored.epochs
    if extend:
        done = run_dir.finished_epochs()
        if args.epochs <= done:
            raise ValueError(f"--epochs {args.epochs}: {run_dir.root} has already trained {done} epochs; to train it "
                             f"longer give more than {done}")
        if stored.schedule.name == "cosine":
            raise ValueError(
                f"--epochs {args.epochs}: {run_dir.root} uses the cosine schedule, whose learning rate depends on the "
                f"total number of epochs ({stored.epochs}): changing it would make the rest of the run follow another "
                "schedule than its start. Only constant, step and multistep runs can be extended; start a new run"
            )
        overrides.append(f"epochs={args.epochs}")
    config = build_config(run_dir.config, overrides=overrides)
    check_device(config)  # before any data or model work
    check_data([config])
    if run_dir.is_complete() and not extend:
        print(f"{run_dir.root} is already complete (summary.json exists); nothing to resume", file=sys.stderr)
        return None, False
    if extend:
        fingerprint = run_dir.read_fingerprint() or {}
        code = {k: fingerprint[k] for k in ("caltrain_version", "git_revision") if k in fingerprint} or None
        run_dir.write_config(config_to_dict(config))
        run_dir.write_fingerprint(config_to_dict(config), code=code)
        if run_dir.is_complete():
            run_dir.summary.unlink()  # superseded: the longer run writes its own at its end
    return config, run_dir.checkpoint.exists()
