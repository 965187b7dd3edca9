"""``caltrain train``: one run, from flags, a YAML file and ``key=value`` overrides; or ``--resume RUN_DIR``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["ACCEPTS_OVERRIDES", "add_arguments", "run"]

#: ``--section.key=value`` arguments are configuration overrides.
ACCEPTS_OVERRIDES = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML configuration (see docs/training.md)")
    p.add_argument("--data", metavar="NAME", help="dataset (caltrain data); default synthetic. Real datasets are read "
                   "from --set data.root=DIR, else $CALTRAIN_DATA_DIR, else ./data")
    p.add_argument("--model", metavar="NAME", help="model (caltrain models); default: mlp for features, cnn for images")
    p.add_argument("--loss", metavar="NAME", help="objective (caltrain losses); default ce")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--seed", type=int, metavar="S")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: ./runs/<data>-<loss>-s<seed>-<time>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any configuration key, e.g. --set optim.lr=0.05 --set loss.options.gamma=3 "
                        "(also accepted as --optim.lr=0.05)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print the summary as JSON at the end")


def _overrides(args: argparse.Namespace) -> list[str]:
    flags = {"data": "data.name", "model": "model.name", "loss": "loss.name", "epochs": "epochs", "seed": "seed"}
    out = [f"{key}={getattr(args, flag)}" for flag, key in flags.items() if getattr(args, flag) is not None]
    if args.quiet:
        out.append("quiet=true")
    return out + list(args.set) + list(getattr(args, "extra_overrides", []))


def run(args: argparse.Namespace) -> int:
    import json

    from caltrain.cli._checks import check_out_dir
    from caltrain.train.config import ConfigError, build_config, check_data, check_device
    from caltrain.train.run_dir import RunDir
    from caltrain.train.trainer import TrainingDiverged, train

    if args.resume:
        run_dir = RunDir(Path(args.resume))
        if not run_dir.root.exists():
            raise FileNotFoundError(f"--resume {args.resume}: no such run directory")
        if not run_dir.root.is_dir():
            raise ValueError(f"--resume {args.resume}: is a file, not a run directory")
        if not run_dir.config.exists():
            raise FileNotFoundError(f"--resume {args.resume}: no config.yaml there (not a caltrain run directory)")
        if run_dir.is_complete():
            print(f"{run_dir.root} is already complete (summary.json exists); nothing to resume", file=sys.stderr)
            return 0
        extra = ["quiet=true"] if args.quiet else []
        try:
            config = build_config(run_dir.config, overrides=extra)
        except ConfigError as err:  # a hand-edited or damaged config.yaml: say which run it belongs to
            raise ConfigError(f"--resume {args.resume}: {err}") from None
        check_device(config)  # before any data or model work
        check_data([config])
        resume = run_dir.checkpoint.exists()
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
        if run_dir.root.exists() and any(run_dir.root.iterdir()) and not args.overwrite:
            hint = " (use --resume to continue it)" if not run_dir.is_complete() else ""
            raise ValueError(f"--out {run_dir.root}: the directory is not empty{hint}; pass --overwrite to replace it")
        if args.overwrite and run_dir.root.exists():
            import shutil

            shutil.rmtree(run_dir.root)
        resume = False
    try:
        summary = train(config, run_dir.root, resume=resume)
    except TrainingDiverged as err:
        print(f"caltrain train: {err}", file=sys.stderr)
        return 3
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
