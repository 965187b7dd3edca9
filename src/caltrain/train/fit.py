"""``caltrain.fit``: train your own ``nn.Module`` on your own data with caltrain's trainer.

Everything ``caltrain train`` does, on a model and data it cannot build itself: every objective, the NaN guard,
per-epoch evaluation, model selection, post-hoc calibration, exact resume, and the same run directory
(:mod:`caltrain.train.run_dir`), so ``caltrain report DIR`` renders it. The data arrive through
:mod:`caltrain.train.inputs` (a ``Dataset``, a ``DataLoader`` or ``(inputs, labels)`` tensors); the
configuration is a :class:`~caltrain.train.config.TrainConfig` built from the keywords, so it is validated as
the command line's is.

What the run directory says about its origin: ``config.yaml`` has ``source: python``, ``model.name:
custom:<ClassName>`` and ``data.name: custom:<description>`` (the command line refuses to resume it:
``caltrain train --resume`` cannot rebuild a Python model); ``meta.json`` holds the model's class, the data's
description and path, and the validation hold-out; ``summary.json`` has ``data`` with the same.

Example:
    >>> import tempfile, torch
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(120, 4, generator=g)
    >>> y = (x[:, :3] + torch.randn(120, 3, generator=g)).argmax(dim=1)  # noisy labels
    >>> result = fit(nn.Linear(4, 3), (x, y), epochs=3, batch_size=16, out=tempfile.mkdtemp(), quiet=True,
    ...              device="cpu", optim={"name": "adamw", "lr": 0.05}, eval={"posthoc": ["ts"]})
    >>> result.summary["data"]["val_holdout"]["samples"], sorted(result.summary["posthoc"])
    (12, ['ts'])
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caltrain.train.config import ConfigError, TrainConfig, build_config, config_to_dict
from caltrain.train.inputs import DatasetInput, TensorInput, TensorLoader, as_input, holdout
from caltrain.train.run_dir import RunDir, result_config
from caltrain.train.trainer import Trainer, _resolve_device

__all__ = ["FitResult", "fit"]

#: The ``data`` settings that apply to data you pass (the others name caltrain's datasets).
_DATA_SETTINGS = ("batch_size", "eval_batch_size")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        summary: the run's summary (what ``summary.json`` holds): ``val`` and ``test`` metrics of the selected
            epoch, ``posthoc`` (each calibrator's test metrics), ``data`` (where each split came from).
        run_dir: the run directory (``caltrain report`` renders it).
        model: your model, trained in place, holding the selected epoch's weights (on the run's device).
        config: the validated configuration the run used.
    """

    summary: dict[str, Any]
    run_dir: Path
    model: nn.Module
    config: TrainConfig

    def __getitem__(self, key: str) -> Any:  # result["test"] reads the summary, as the CLI's --json does
        return self.summary[key]


class _UserSplit:
    """The length and (unknown) true posterior of a user split, as the evaluator reads them."""

    true_posterior = None

    def __init__(self, data: TensorInput | DatasetInput) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)


class _UserData:
    """A user's train / val / test as the trainer's dataset (no OOD sets, no true posterior)."""

    ood_names: tuple[str, ...] = ()
    ood: dict[str, Any] = {}

    def __init__(self, splits: dict[str, TensorInput | DatasetInput], num_classes: int,
                 input_shape: tuple[int, ...], task: str = "classification") -> None:
        self.train, self.val, self.test = (_UserSplit(splits[s]) for s in ("train", "val", "test"))
        self.num_classes = num_classes
        self.input_shape = input_shape
        self.kind = "image" if len(input_shape) == 3 else "features"
        self.task = task  # caltrain.data.splits.TASKS: what the trainer's evaluator and checks follow


class _FitTrainer(Trainer):
    """The trainer on a user's model and data (the five hooks of :class:`Trainer` overridden)."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, resume: bool, model: nn.Module, data: _UserData,
                 config_dict: dict[str, Any], meta: dict[str, Any], summary_extra: dict[str, Any]) -> None:
        self._user_model, self._user_data = model, data
        self._config_dict, self._meta, self._summary = config_dict, meta, summary_extra
        super().__init__(config, run_dir, resume=resume)

    def _create_data(self) -> Any:
        return self._user_data

    def _create_model(self) -> nn.Module:
        self.model_name = self._config_dict["model"]["name"]
        return self._user_model

    def _input_domain(self) -> dict[str, torch.Tensor | None]:
        return {"std": None, "low": None, "high": None}  # unit scale, unbounded: caltrain does not know your scaling

    def _create_loaders(self) -> tuple[Any, Any]:
        cfg, device = self.cfg, self.device

        def loader(split: _UserSplit, *, train: bool) -> Any:
            data = split.data
            batch_size = cfg.data.batch_size if train else cfg.data.eval_batch_size
            if isinstance(data, TensorInput):
                return TensorLoader(data, batch_size=batch_size, shuffle=train, seed=cfg.seed, device=device)
            shuffle = train and data.settings.get("shuffle", True)
            return data.make_loader(batch_size=batch_size, shuffle=shuffle, seed=cfg.seed, device=device, train=train)

        return loader(self.data.train, train=True), lambda split: loader(split, train=False)

    def config_dict(self) -> dict[str, Any]:
        return self._config_dict

    def _extra_meta(self) -> dict[str, Any]:
        return self._meta

    def _summary_extra(self) -> dict[str, Any] | None:
        return self._summary


def _build_settings(loss: str, loss_options: dict[str, Any] | None, epochs: int,
                    settings: dict[str, Any]) -> TrainConfig:
    data = dict(settings.get("data") or {})
    for key in data:
        if key not in _DATA_SETTINGS:
            why = ("augment your data in your Dataset's transforms" if key == "augment"
                   else "caltrain.fit trains on the data you pass")
            raise ConfigError(f"data.{key}: not a setting of caltrain.fit ({why}); valid data settings: "
                              f"{', '.join(_DATA_SETTINGS)}")
    tree = {**settings, "loss": {"name": loss, "options": dict(loss_options or {})}, "epochs": epochs}
    return build_config(base=tree)


def _class_name(obj: Any) -> str:
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ in ("__main__", "builtins") else f"{cls.__module__}.{cls.__qualname__}"


def _dry_forward(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Size:
    """The model's output shape on one input (eval mode, no gradient): ``[1, outputs]`` (a classifier) or
    ``[1, 1, H, W]`` (a dense binary model); a clear error when it cannot run or gives anything else."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x.to(device))
    except Exception as err:  # noqa: BLE001 - any failure of the user's forward: say where it happened
        raise ValueError(f"model: the forward pass on one training input of shape {list(x.shape)} failed "
                         f"({type(err).__name__}: {err})") from err
    finally:
        model.train(was_training)
    dense = isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[1] == 1
    if not isinstance(out, torch.Tensor) or (out.ndim != 2 and not dense) or out.shape[0] != x.shape[0]:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model: expected logits of shape [batch, outputs] (a classifier) or [batch, 1, H, W] (one "
                         f"logit per pixel: a dense binary model) from the forward pass, got {shape}")
    return out.shape


def _resolve_task(out_shape: torch.Size, target: torch.Tensor, loss: str) -> str:
    """The task of a user's model and data: ``"dense_binary"`` when the model outputs ``[batch, 1, H, W]`` (then the
    targets must be masks of that size), else ``"classification"``; the objective must train it."""
    from caltrain import losses

    task = "dense_binary" if len(out_shape) == 4 else "classification"
    if task == "dense_binary" and (target.ndim != 4 or tuple(target.shape[-2:]) != tuple(out_shape[-2:])):
        raise ValueError(f"labels: the model outputs one logit per pixel {list(out_shape)}, so the targets must be "
                         f"binary masks [N, 1, {out_shape[-2]}, {out_shape[-1]}]; got {list(target.shape)}")
    if task == "classification" and target.ndim != 1:
        raise ValueError(f"model: the targets are masks {list(target.shape)}, so the model must output one logit "
                         f"per pixel [batch, 1, H, W]; it outputs {list(out_shape)}")
    if task not in losses.tasks(loss):
        fitting = ", ".join(n for n in losses.names() if task in losses.tasks(n))
        raise ValueError(f"loss: {loss!r} trains {' and '.join(sorted(losses.tasks(loss)))} outputs, but the model "
                         f"and data are a {task} task; objectives for it: {fitting}")
    return task


def _resolve_num_classes(num_classes: int | None, splits: dict[str, Any], width: int, loss: str) -> int:
    """K: given, else from the labels (max + 1 over the splits), else from the model's output width."""
    from caltrain.losses import LOSSES

    extra = int(getattr(LOSSES.get(loss), "abstention", None) is not None)
    labels = [splits[s].labels() for s in ("train", "val", "test")]
    known = [y for y in labels if y is not None and y.numel()]
    low = min(int(y.min()) for y in known) if known else 0
    if low < 0:
        raise ValueError(f"labels: expected class indices >= 0, got {low}")
    from_labels = max(int(y.max()) for y in known) + 1 if known else None
    head = ("K + 1 outputs (K classes and the abstention output): wrap it with "
            "caltrain.models.with_abstention_head(model), or end it with nn.Linear(features, K + 1)"
            if extra else "K outputs, one logit per class (no abstention output)")
    if num_classes is not None:
        k = int(num_classes)
        if k < 2:
            raise ValueError(f"num_classes: expected at least 2, got {num_classes}")
        if from_labels is not None and from_labels > k:
            raise ValueError(f"num_classes={k}, but the labels go up to {from_labels - 1}")
        how = "given"
    elif from_labels is not None:
        k, how = from_labels, "inferred from the labels as their max + 1"
    else:
        k, how = width - extra, "inferred from the model's output width"
    if width != k + extra:
        fix = ("; if some classes are absent from the labels, pass num_classes="
               if how.startswith("inferred from the labels") else "")
        raise ValueError(f"model: it outputs {width} logits per sample, but loss {loss!r} needs {k + extra} for "
                         f"K={k} classes ({how}{fix}); build the model with {head}")
    if k < 2:
        raise ValueError(f"num_classes: a classifier needs at least 2 classes, got {k} ({how})")
    return k


def _default_out(loss: str, seed: int) -> Path:
    return Path("runs") / f"fit-{loss}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def fit(
    model: nn.Module,
    train: Any,
    *,
    val: Any = None,
    test: Any = None,
    loss: str = "ce",
    loss_options: dict[str, Any] | None = None,
    epochs: int = 10,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    num_classes: int | None = None,
    val_fraction: float = 0.1,
    batch_size: int | None = None,
    **settings: Any,
) -> FitResult:
    """Train ``model`` on ``train`` with caltrain's trainer; returns a :class:`FitResult` (summary, run dir, model).

    Args:
        model: your ``nn.Module``, mapping a batch of inputs to logits ``[batch, outputs]``; ``outputs`` is K, or
            K + 1 for an objective with an abstention output (:func:`caltrain.models.with_abstention_head`). A model
            returning ``[batch, 1, H, W]`` (one logit per pixel: segmentation, salient-object detection) trains the
            dense binary task (:mod:`caltrain.train.dense`) with a dense objective (``bce``, ``aslp``, ``focal``,
            ...) on binary masks. It is trained in place and ends holding the selected epoch's weights.
        train, val, test: a map-style ``torch.utils.data.Dataset`` yielding ``(x, y)``, a ``DataLoader`` over one,
            or ``(inputs, labels)`` tensors / NumPy arrays (:mod:`caltrain.train.inputs`); ``y`` a class index, or
            a binary mask ``[H, W]`` / ``[1, H, W]`` (batched: ``[N, 1, H, W]``) for a dense model. Without ``val``, a
            seeded ``val_fraction`` of ``train`` is held out (printed, and in ``summary["data"]``). Without
            ``test``, the validation split stands in for it: ``test`` metrics are validation metrics and the
            post-hoc calibrators are scored on the data they were fitted on (``summary["data"]["test"]`` says so).
        loss, loss_options: the objective's registry name and hyperparameters (``caltrain losses`` lists them).
        epochs: epochs to train.
        out: the run directory (default ``runs/fit-<loss>-s<seed>-<time>``); it must be empty or absent unless
            ``resume`` or ``overwrite``.
        resume: continue the run in ``out`` from its checkpoint (same model class, data and settings; on the
            CPU the result equals an uninterrupted run's); a complete run is not retrained: its summary is
            returned and the model loaded with its selected weights.
        overwrite: replace a previous run in ``out`` (caltrain's own files only, as ``caltrain train --overwrite``).
        num_classes: K; default: the largest label + 1 over the splits whose labels are known (tensors, or a
            dataset's ``targets`` / ``labels``), else the model's output width (less the abstention output).
        val_fraction: the share of ``train`` held out as validation when ``val`` is not given.
        batch_size: training batch size (``data.batch_size``; default: the ``train`` DataLoader's, else 128).
        **settings: any other configuration key (``caltrain train --set``), validated as ``TrainConfig``:
            ``optim={"name": "adamw", "lr": 1e-3}``, ``schedule={...}``, ``eval={"posthoc": ["ts"]}``,
            ``mixup={...}``, ``seed=0``, ``device="cpu"``, ``threads=1``, ``quiet=True``,
            ``data={"eval_batch_size": 512}``. ``model``, ``loss`` and the dataset keys are refused.

    Raises:
        ConfigError: an invalid setting (as ``caltrain train`` reports it).
        ValueError, TypeError: data that cannot be used, a model whose output does not fit the objective (with how
            to build its head), an ``out`` that is not empty (without ``resume`` / ``overwrite``).
        caltrain.train.TrainingDiverged: a non-finite loss, weight or logit (the last good checkpoint stays).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("caltrain.fit trains on one process; under torchrun use caltrain train with a registered "
                         "model")
    train_in = as_input(train, "train")
    if batch_size is not None or (isinstance(train_in, DatasetInput) and train_in.batch_size is not None):
        data_settings = dict(settings.get("data") or {})
        size = batch_size if batch_size is not None else train_in.batch_size
        if "batch_size" in data_settings and data_settings["batch_size"] != size:
            raise ConfigError(f"data.batch_size={data_settings['batch_size']} contradicts batch size {size} "
                              "(batch_size= or the train DataLoader's)")
        settings = {**settings, "data": {**data_settings, "batch_size": size}}
    cfg = _build_settings(loss, loss_options, epochs, settings)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction}")

    say = (lambda msg: None) if cfg.quiet else (lambda msg: print(f"caltrain.fit: {msg}", file=sys.stderr))
    data_info: dict[str, Any] = {"train": train_in.describe()}
    if val is None:
        train_in, val_in, val_index = holdout(train_in, val_fraction, cfg.seed)
        data_info["val"] = (f"held out from train: {len(val_in)} of {len(val_in) + len(train_in)} samples "
                            f"(val_fraction {val_fraction}, seed {cfg.seed})")
        data_info["val_holdout"] = {"samples": len(val_in), "of": len(val_in) + len(train_in),
                                    "fraction": val_fraction, "seed": cfg.seed}
        say(f"no val given: holding out {len(val_in)} of {len(val_in) + len(train_in)} training samples as "
            f"validation (seed {cfg.seed})")
        del val_index
    else:
        val_in = as_input(val, "val")
        data_info["val"] = val_in.describe()
    if test is None:
        test_in = val_in
        data_info["test"] = ("none given: the validation split stands in (test metrics are validation metrics; "
                             "post-hoc calibrators are scored on the data they were fitted on)")
        say("no test given: reporting the validation split as test")
    else:
        test_in = as_input(test, "test")
        data_info["test"] = test_in.describe()
    splits = {"train": train_in, "val": val_in, "test": test_in}
    data_info["path"] = {s: d.path() for s, d in splits.items()}

    device = _resolve_device(cfg.device)
    model.to(device)
    sample = train_in.first()
    out_shape = _dry_forward(model, sample, device)
    task = _resolve_task(out_shape, train_in.first_target(), cfg.loss.name)
    if task == "dense_binary":
        if num_classes not in (None, 1, 2):
            raise ValueError(f"num_classes: a dense binary model has one output per pixel (foreground), got "
                             f"{num_classes}")
        k = 1
    else:
        k = _resolve_num_classes(num_classes, splits, int(out_shape[1]), cfg.loss.name)
    data_info["num_classes"] = k
    data_info["task"] = task
    user_data = _UserData(splits, k, tuple(sample.shape[1:]), task)

    model_name = f"custom:{type(model).__name__}"
    config_dict = config_to_dict(cfg)
    config_dict = {"source": "python", **config_dict}
    config_dict["model"] = {"name": model_name, "options": {}}
    config_dict["data"] = {
        "name": "custom:tensors" if isinstance(train, (tuple, list)) else
                f"custom:{type(getattr(train, 'dataset', train)).__name__}",
        "description": {s: data_info[s] for s in ("train", "val", "test")},
        "num_classes": k,
        "input_shape": list(user_data.input_shape),
        "batch_size": cfg.data.batch_size,
        "eval_batch_size": cfg.data.eval_batch_size,
    }
    meta = {"source": "python", "model": model_name, "model_class": _class_name(model), "data": data_info}

    run = RunDir(Path(out) if out is not None else _default_out(cfg.loss.name, cfg.seed))
    _check_out(run, resume=resume, overwrite=overwrite)  # before the lock file is created in a user's folder
    with run.lock():
        start = _prepare_run_dir(run, config_dict, resume=resume, overwrite=overwrite)
        if start == "complete":
            say(f"{run.root} is already complete: returning its summary")
            _load_selected(run, model, device)
            return FitResult(run.read_summary(), run.root, model, cfg)
        trainer = _FitTrainer(cfg, run.root, resume=start == "resume", model=model, data=user_data,
                              config_dict=config_dict, meta=meta, summary_extra={"data": data_info})
        summary = trainer.fit()
    return FitResult(summary, run.root, model, cfg)


def _prepare_run_dir(run: RunDir, config_dict: dict[str, Any], *, resume: bool, overwrite: bool) -> str:
    """``"fresh"``, ``"resume"`` or ``"complete"``; checks ``out`` as ``caltrain train`` does (under the lock)."""
    from caltrain.train.config import load_yaml

    _check_out(run, resume=resume, overwrite=overwrite)
    if resume and run.config.is_file():
        stored = load_yaml(run.config)
        if stored.get("source") != "python":
            raise ValueError(f"out: {run.root} was written by caltrain train, not caltrain.fit; resume it with "
                             f"caltrain train --resume {run.root}")
        old, new = result_config(stored), result_config(_plain(config_dict))
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(f"resume: {run.root} was trained with other settings or data ({', '.join(changed)} "
                             "differ); pass the same model, data and settings, or start a new run")
        if run.is_complete():
            return "complete"
        return "resume" if run.checkpoint.is_file() else "fresh"
    if not run.is_empty():
        run.clear("out")  # _check_out allowed it: overwrite=True on a folder caltrain wrote
    return "fresh"


def _check_out(run: RunDir, *, resume: bool, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder that is neither resumed nor caltrain's to replace.

    Writes nothing, so a refused folder (a user's own) is left exactly as it was, without a lock file.
    """
    if run.root.exists() and not run.root.is_dir():
        raise ValueError(f"out: {run.root} is a file, not a directory")
    if run.is_empty() or (resume and run.config.is_file()):
        return
    if not overwrite:
        hint = " (pass resume=True to continue it)" if run.config.is_file() and not run.is_complete() else ""
        raise ValueError(f"out: {run.root} is not empty{hint}; pass overwrite=True to replace it")
    run.check_replaceable("out")


def _plain(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` as it reads back from YAML (tuples as lists)."""
    import yaml

    return yaml.safe_load(yaml.safe_dump(tree, sort_keys=False))


def _load_selected(run: RunDir, model: nn.Module, device: torch.device) -> None:
    """Load a complete run's selected weights (``best.pt``, else the last checkpoint) into ``model``."""
    from caltrain.train.checkpoint import BEST_KEYS, load_checkpoint

    path, keys = (run.best, BEST_KEYS) if run.best.is_file() else (run.checkpoint, ("model",))
    with contextlib.suppress(FileNotFoundError):
        state = load_checkpoint(path, device, required=keys)["model"]
        try:
            model.load_state_dict(state)
        except RuntimeError as err:  # another architecture under the same class name
            first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
            raise ValueError(f"resume: {path} does not fit this model ({first}); pass the model the run was "
                             "trained with, or start a new run") from None

