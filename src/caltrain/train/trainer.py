"""The training loop: one loop for every objective, dataset and model, with no per-method branches.

The :class:`Trainer` builds a run's parts from the configuration and runs its epochs; each other concern has
its own module:

- :mod:`~caltrain.train.step`: one optimiser step (forward, the objective's loss, mixup, backward, SAM);
- :mod:`~caltrain.train.evaluation`: a split's logits (gathered across ranks) and metrics;
- :mod:`~caltrain.train.guard`: the NaN guard (:class:`TrainingDiverged`);
- :mod:`~caltrain.train.selection`: the best epoch under ``eval.select``;
- :mod:`~caltrain.train.checkpoint`: the state a resumed run restores;
- :mod:`~caltrain.train.finish`: the end of a run (selected model, final metrics, post-hoc, OOD, files).

The loop only talks to the objective through its protocol (:mod:`caltrain.losses.base`): it builds a model
with ``objective.num_outputs`` outputs and calls the epoch hooks (with the validation logits when
``objective.needs_validation``).

Each epoch: train (running loss and metrics over the epoch's batches), check the weights are finite, evaluate
validation and test (their logits must be finite), log one record to ``metrics.jsonl``, update model selection,
save a checkpoint. At the end: :func:`~caltrain.train.finish.finish_run` reloads the selected model and writes
``summary.json`` (see :mod:`caltrain.train.run_dir`).

Resuming (``resume=True``) restores everything from ``checkpoint.pt`` (model, optimiser, scheduler, objective
state, RNG states, history, model selection) and continues with the next epoch; on CPU the resumed run ends
with exactly the metrics of an uninterrupted one. The checkpoint is read without running code (see
:mod:`~caltrain.train.checkpoint`), a resume with another number of processes than the checkpoint's is refused,
and the temporary files of atomic writes that a killed run left in the run directory are removed when a run
(re)starts in it. A non-finite loss or weights stop the run with :class:`TrainingDiverged`; the last good
checkpoint stays in place.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import caltrain
from caltrain import posthoc
from caltrain.train.checkpoint import capture_run_state, restore_run_state, save_checkpoint
from caltrain.train.config import TrainConfig, config_to_dict, resolve_model_name
from caltrain.train.distributed import init_from_env, merge_sample_state, sum_over_ranks
from caltrain.train.evaluation import SplitScore, make_evaluator
from caltrain.train.finish import finish_run
from caltrain.train.guard import TrainingDiverged, check_finite_loss, check_finite_split, check_finite_weights
from caltrain.train.optim import build_optimizer
from caltrain.train.progress import Progress, make_progress
from caltrain.train.run_dir import RunDir, git_revision
from caltrain.train.schedule import build_scheduler
from caltrain.train.selection import Selection
from caltrain.train.step import TrainStep, frozen_batchnorm_stats
from caltrain.train.task import check_task, model_outputs, objective_classes
from caltrain.utils.io import remove_stale_temp_files
from caltrain.utils.modules import unwrap
from caltrain.utils.threads import prepare_threads, resolve_threads

__all__ = ["Trainer", "TrainingDiverged", "train"]

_frozen_batchnorm_stats = frozen_batchnorm_stats  # the name this module had before caltrain.train.step

#: How often (in steps) the running loss is read on the host for the progress bar and the NaN guard.
_HOST_READ_EVERY = 20


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Trains one configuration into one run directory.

    Args:
        config: the validated configuration.
        run_dir: where the run writes its files (created if needed).
        resume: continue from ``run_dir/checkpoint.pt``.
    """

    def __init__(self, config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> None:
        from caltrain import losses

        self.cfg = config
        self.run = RunDir(Path(run_dir))
        self.resume = resume
        self.device = _resolve_device(config.device)
        self.dist = init_from_env(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if config.precision != "fp32" and self.device.type != "cuda":
            raise ValueError(f"precision={config.precision!r} needs a CUDA device; on {self.device} use fp32")

        prepare_threads(config.threads, self.device)
        torch.manual_seed(config.seed)
        self.data = self._create_data()
        self.num_classes = self.data.num_classes
        self.task = getattr(self.data, "task", "classification")
        self.objective = losses.create(
            config.loss.name, num_classes=objective_classes(self.task, self.num_classes),
            num_samples=len(self.data.train), **config.loss.options
        ).to(self.device)
        check_task(self.task, self.objective, config)
        torch.manual_seed(config.seed)  # model initialisation depends on the seed only
        model = self._create_model().to(self.device)  # sets self.model_name
        self.channels_last = config.channels_last is True or (
            config.channels_last == "auto" and len(self.data.input_shape) == 3
        )
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.threads = resolve_threads(config.threads, model=model, input_shape=tuple(self.data.input_shape),
                                       batch_size=config.data.batch_size, device=self.device)
        self.model = model
        if self.dist.enabled:
            if self.objective.needs_input_grad or "model" in self.objective.requires:
                raise ValueError(
                    f"loss {config.loss.name!r} runs extra passes through the model, which DistributedDataParallel "
                    "does not support; train it on one process"
                )
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.forward_model = torch.compile(self.model) if config.compile else self.model

        self.objective.set_input_domain(**self._input_domain())
        self.train_loader, eval_loader = self._create_loaders()
        self.eval_loaders = {split: eval_loader(getattr(self.data, split)) for split in ("train", "val", "test")}
        self.abstention = config.eval.abstention
        if self.abstention is None:
            self.abstention = self.objective.abstention
        self.evaluator = make_evaluator(
            self.task, model=self.model, forward_model=self.forward_model, data=self.data, loaders=self.eval_loaders,
            make_loader=eval_loader, n_bins=config.eval.n_bins, abstention=self.abstention,
            autocast=self._autocast, prepare=self._prepare, dist=self.dist, device=self.device,
            posthoc_pixels=config.eval.posthoc_pixels, seed=config.seed,
        )
        self.optimizer = build_optimizer(unwrap(self.model), config.optim)
        self.scheduler = build_scheduler(
            self.optimizer, config.schedule, steps_per_epoch=len(self.train_loader), total_epochs=config.epochs
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
        self.generator = torch.Generator().manual_seed(config.seed + 7919 * self.dist.rank)
        self.train_step = TrainStep(
            model=self.model, forward_model=self.forward_model, objective=self.objective, optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler, mixup=config.mixup, grad_clip=config.optim.grad_clip,
            generator=self.generator, autocast=self._autocast,
        )

        self.start_epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.selection = Selection(config.eval.select)
        self.curvature = None
        if config.curvature.every_steps:
            from caltrain.analysis import CurvatureTracker

            self.curvature = CurvatureTracker(
                subset=config.curvature.subset, iters=config.curvature.iters, n_bins=config.eval.n_bins,
                batch_size=config.data.batch_size,
            )

    # ---------------------------------------------------- the parts a run is built from
    # caltrain.fit (train/fit.py) overrides these five to train a user's model on a user's data.
    def _create_data(self) -> Any:
        """The dataset (``train``/``val``/``test`` splits, ``num_classes``, ``kind``, ``input_shape``, OOD sets)."""
        from caltrain import data as data_mod

        cfg = self.cfg
        return data_mod.create(cfg.data.name, root=cfg.data.root, **cfg.data.options)

    def _create_model(self) -> nn.Module:
        """The model with ``model_outputs(task, objective)`` outputs, initialised under ``torch.manual_seed(seed)``."""
        from caltrain import models

        cfg = self.cfg
        self.model_name = resolve_model_name(cfg.model.name, self.data.kind, self.task)
        return models.create(
            self.model_name, num_classes=model_outputs(self.task, self.objective), in_channels=self.data.input_shape[0],
            input_shape=tuple(self.data.input_shape), **cfg.model.options,
        )

    def _input_domain(self) -> dict[str, torch.Tensor | None]:
        """What ``objective.set_input_domain`` is told (the model-space scale and range of the inputs)."""
        norm = (tuple(self.data.mean), tuple(self.data.std))
        return _input_domain(norm, tuple(self.data.input_shape), self.device)

    def _create_loaders(self) -> tuple[Any, Any]:
        """The training loader and a function building a split's evaluation loader (unshuffled, not augmented)."""
        from caltrain import data as data_mod

        config = self.cfg
        norm = (tuple(self.data.mean), tuple(self.data.std))
        loader_kw = dict(device=self.device, seed=config.seed, normalization=norm,
                         rank=self.dist.rank, world_size=self.dist.world_size)
        train_loader = data_mod.make_loader(
            self.data.train, batch_size=config.data.batch_size, shuffle=True, augment=config.data.augment,
            drop_last=False, **loader_kw,
        )

        def eval_loader(split: Any):
            return data_mod.make_loader(split, batch_size=config.data.eval_batch_size, shuffle=False, augment=False,
                                        drop_last=False, **loader_kw)

        return train_loader, eval_loader

    def config_dict(self) -> dict[str, Any]:
        """The configuration as written to ``config.yaml``, the fingerprint and the checkpoint."""
        return config_to_dict(self.cfg)

    def _extra_meta(self) -> dict[str, Any]:
        """Further ``meta.json`` entries (none for a registered run)."""
        return {}

    def _summary_extra(self) -> dict[str, Any] | None:
        """Further ``summary.json`` entries (none for a registered run)."""
        return None

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs in the model's memory format."""
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    # ------------------------------------------------------------- evaluation
    def predict(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (float32) and labels of ``split`` in dataset order, gathered across ranks."""
        return self.evaluator.predict(split)

    def evaluate(self, splits: tuple[str, ...] = ("val", "test")) -> dict[str, dict[str, float]]:
        """Metrics of the current model on ``splits`` (probabilities from a float64 softmax of the logits)."""
        return self.evaluator.evaluate(splits)

    # ------------------------------------------------------------------- loop
    def fit(self, progress: Progress | None = None) -> dict[str, Any]:
        """Train for ``config.epochs`` epochs (from the checkpoint when resuming); returns the summary.

        Args:
            progress: where progress goes (default: a bar on a terminal, lines in logs, nothing when quiet).
        """
        if self.dist.is_main:
            self._remove_stale_temp_files()
        if self.resume:
            self._restore()
        elif self.dist.is_main:
            self._write_start_files()
        progress = progress or make_progress(self.cfg.quiet, self.dist.is_main)
        t_start = time.perf_counter()
        try:
            for epoch in range(self.start_epoch, self.cfg.epochs):
                t0 = time.perf_counter()
                out = self._train_epoch(epoch, progress)
                record, val = self._epoch_record(epoch, out["train"])
                record["time_s"] = time.perf_counter() - t0
                self.objective.on_epoch_end(epoch, **self._validation_inputs(val))
                objective_summary = self.objective.epoch_summary()
                if objective_summary:
                    record["objective"] = objective_summary
                self.history.extend(out["step_records"])
                self.history.append(record)
                if self.selection.update(epoch, record) and self.dist.is_main:
                    save_checkpoint(self.run.best, {"model": unwrap(self.model).state_dict(), "epoch": epoch + 1})
                if self.dist.is_main and ((epoch + 1) % self.cfg.checkpoint_every == 0 or epoch + 1 == self.cfg.epochs):
                    save_checkpoint(self.run.checkpoint, self._checkpoint_state(epoch))
                if self.dist.is_main:
                    self.run.write_metrics(self.history)
                progress.end_epoch(record)
        finally:
            progress.close()
        summary = finish_run(
            cfg=self.cfg, run=self.run, model=self.model, evaluator=self.evaluator, selection=self.selection,
            steps=self.step, train_seconds=time.perf_counter() - t_start,
            convention=posthoc.RUN_ABSTENTION if self.objective.has_abstention else None, device=self.device,
            is_main=self.dist.is_main, extra=self._summary_extra(), sample_state=self._objective_sample_state(),
        )
        if self.dist.enabled:
            torch.distributed.barrier()
        return summary

    def _train_epoch(self, epoch: int, progress) -> dict[str, Any]:
        """One pass over the training set; returns the running train metrics and the mid-epoch records."""
        self.model.train()
        self.objective.train()
        self.objective.on_epoch_start(epoch)
        self.train_loader.set_epoch(epoch)
        snapshot = {k: v.clone() for k, v in self._objective_sample_state().items()} if self.dist.enabled else {}
        progress.start_epoch(epoch, self.cfg.epochs, len(self.train_loader))
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)  # running accuracy, read with the loss
        n_seen = 0
        running = self.evaluator.train_metrics()
        records = []
        for i, (x, y, idx) in enumerate(self.train_loader):
            loss, logits = self.train_step(self._prepare(x), y, idx)
            self.step += 1
            nonfinite |= ~torch.isfinite(loss)
            loss_sum += loss.double() * y.shape[0]
            correct += (logits.argmax(1) == y).sum()
            n_seen += y.shape[0]
            running.update(logits, y, idx)
            if (i + 1) % _HOST_READ_EVERY == 0 or i + 1 == len(self.train_loader):
                check_finite_loss(nonfinite, epoch=epoch, step=self.step, checkpoint=self.run.checkpoint)
                progress.update(i + 1, float(loss_sum) / max(n_seen, 1), int(correct) / max(n_seen, 1))
            if self.cfg.eval.every_steps and self.step % self.cfg.eval.every_steps == 0:
                records.append(self._step_record(epoch, i + 1))
                self.model.train()
            if self.curvature is not None and self.step % self.cfg.curvature.every_steps == 0:
                records.append({"epoch": epoch + (i + 1) / len(self.train_loader), "step": self.step,
                                 "curvature": self._track_curvature()})
                self.model.train()
        check_finite_weights(unwrap(self.model), epoch=epoch, step=self.step, checkpoint=self.run.checkpoint)
        merge_sample_state(self._objective_sample_state(), snapshot, self.dist)
        loss_sum, n_seen = sum_over_ranks(loss_sum, n_seen, self.dist)
        train_metrics = running.compute()
        train_metrics["loss"] = float(loss_sum) / n_seen
        return {"train": train_metrics, "step_records": records}

    def _epoch_record(self, epoch: int, train_metrics: dict[str, Any]) -> tuple[dict[str, Any], SplitScore]:
        """The epoch's ``metrics.jsonl`` record (train, validation, test, lr) and the validation score."""
        record: dict[str, Any] = {"epoch": epoch + 1, "step": self.step}
        if "train" in self.cfg.eval.splits:
            record["train"] = train_metrics
        else:
            record["train"] = {"loss": train_metrics["loss"]}
        statistics = self.objective.validation_statistics if self.objective.needs_validation_statistics else None
        val = self._evaluate_split("val", epoch, statistics=statistics)
        record["val"] = val.metrics
        if "test" in self.cfg.eval.splits:
            record["test"] = self._evaluate_split("test", epoch).metrics
        record["lr"] = self.scheduler.get_last_lr()[0]
        return record, val

    def _validation_inputs(self, val: SplitScore) -> dict[str, Any]:
        """What ``objective.on_epoch_end`` asked for through its protocol: the validation logits and labels
        (``needs_validation``), the summed validation statistics (``needs_validation_statistics``)."""
        inputs: dict[str, Any] = {}
        if self.objective.needs_validation:
            inputs.update(val_logits=val.logits, val_labels=val.labels)
        if self.objective.needs_validation_statistics:
            inputs["val_stats"] = val.statistics
        return inputs

    def _step_record(self, epoch: int, batches_done: int) -> dict[str, Any]:
        record: dict[str, Any] = {"epoch": epoch + batches_done / len(self.train_loader), "step": self.step}
        for split in (s for s in self.cfg.eval.splits if s != "train"):
            record[split] = self._evaluate_split(split, epoch).metrics
        return record

    def _evaluate_split(self, split: str, epoch: int, statistics: Any = None) -> SplitScore:
        """The current model's score on ``split``; a diverged model (a non-finite logit) stops the run."""
        score = self.evaluator.score(split, statistics=statistics)
        check_finite_split(score.finite, split, epoch=epoch, step=self.step, checkpoint=self.run.checkpoint)
        return score

    def _track_curvature(self) -> dict[str, float]:
        """Curvature and margin tail of the current model on the first ``curvature.subset`` training samples."""
        xs, ys, taken = [], [], 0
        for xb, yb, _ in self.eval_loaders["train"]:
            xs.append(xb)
            ys.append(yb)
            taken += yb.shape[0]
            if taken >= self.cfg.curvature.subset:
                break
        n = self.cfg.curvature.subset
        return self.curvature(unwrap(self.model), torch.cat(xs)[:n], torch.cat(ys)[:n])

    def _objective_sample_state(self) -> dict[str, torch.Tensor]:
        names = getattr(self.objective, "sample_state", ())
        return {name: getattr(self.objective, name) for name in names}

    # -------------------------------------------------------------- run files
    def _checkpoint_state(self, epoch: int) -> dict[str, Any]:
        return capture_run_state(
            epoch=epoch, step=self.step, model=unwrap(self.model), optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler, objective=self.objective, generator=self.generator,
            curvature=self.curvature, history=self.history, best=self.selection.best, config=self.config_dict(),
            world_size=self.dist.world_size,
        )

    def _restore(self) -> None:
        state = restore_run_state(
            self.run.checkpoint, config=self.config_dict(), config_file=self.run.config, device=self.device,
            model=unwrap(self.model), optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            objective=self.objective, generator=self.generator, curvature=self.curvature,
            world_size=self.dist.world_size,
        )
        self.start_epoch = state["start_epoch"]
        self.step = state["step"]
        self.history = state["history"]
        self.selection = Selection(self.cfg.eval.select, state["best"])
        if self.dist.is_main:
            self.run.write_metrics(self.history)  # drop records logged after the checkpoint

    def _remove_stale_temp_files(self) -> None:
        """Delete the temporary files of atomic writes that a killed run left (no other process writes here now)."""
        for folder in (self.run.root, self.run.calibrators):
            remove_stale_temp_files(folder)

    def _write_start_files(self) -> None:
        import platform

        self.run.write_marker()  # first: the folder is caltrain's (what an overwrite requires)
        self.run.write_config(self.config_dict())
        self.run.write_fingerprint(self.config_dict())  # what a suite compares before reusing the run
        self.run.write_meta({
            "caltrain_version": caltrain.__version__,
            "git_revision": git_revision(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "model": self.model_name,
            "num_parameters": sum(p.numel() for p in unwrap(self.model).parameters()),
            "threads": self.threads,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **self._extra_meta(),
        })


def _input_domain(norm: tuple[tuple[float, ...], tuple[float, ...]], input_shape: tuple[int, ...],
                  device: torch.device) -> dict[str, torch.Tensor | None]:
    """The model-space scale and valid range of the inputs (see ``Objective.set_input_domain``).

    Images are on the [0, 1] scale before normalisation, so their valid range is known; features are unbounded.
    """
    mean = torch.tensor(norm[0], dtype=torch.float32, device=device)
    std = torch.tensor(norm[1], dtype=torch.float32, device=device)
    if len(input_shape) == 3:
        mean, std = mean.view(-1, 1, 1), std.view(-1, 1, 1)
        return {"std": std, "low": (0.0 - mean) / std, "high": (1.0 - mean) / std}
    return {"std": std, "low": None, "high": None}


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (or resume it) and return the summary (also in ``summary.json``).

    The run directory's lock (:meth:`RunDir.lock`) is held from before the data is loaded to the end of the run
    (by the main process only under torchrun): a second process writing the same folder fails at once with
    :class:`~caltrain.train.run_dir.RunLockedError`, naming the holder.
    """
    import os

    main = int(os.environ.get("RANK", "0")) == 0
    with RunDir(Path(run_dir)).lock() if main else contextlib.nullcontext():
        return Trainer(config, run_dir, resume=resume).fit()
