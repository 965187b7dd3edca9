"""The training loop: one loop for every objective, dataset and model, with no per-method branches.

The loop only talks to the objective through its protocol (:mod:`caltrain.losses.base`): it builds a model
with ``objective.num_outputs`` outputs, passes ``forward`` the extra inputs listed in ``objective.requires``,
makes the inputs require gradients when ``objective.needs_input_grad``, and calls the epoch hooks (with the
validation logits when ``objective.needs_validation``).

Each epoch: train (running loss and metrics over the epoch's batches), evaluate validation and test, log one
record to ``metrics.jsonl``, update model selection, save a checkpoint. At the end: reload the selected model,
cache its validation/test logits, fit the configured post-hoc calibrators on validation and report the test
metrics before and after each, in ``summary.json`` (see :mod:`caltrain.train.run_dir` for the layout).

Resuming (``resume=True``) restores everything from ``checkpoint.pt`` (model, optimiser, scheduler, objective
state, RNG states, history, model selection) and continues with the next epoch; on CPU the resumed run ends
with exactly the metrics of an uninterrupted one. A non-finite loss stops the run with
:class:`TrainingDiverged`; the last good checkpoint stays in place.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

import caltrain
from caltrain.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from caltrain.train.config import TrainConfig, config_to_dict
from caltrain.train.distributed import DistContext, all_gather_rows, init_from_env, merge_sample_state
from caltrain.train.mixup import mix_batch
from caltrain.train.optim import SAM, build_optimizer
from caltrain.train.progress import Progress, make_progress
from caltrain.train.run_dir import RunDir, git_revision
from caltrain.train.schedule import build_scheduler
from caltrain.utils.io import atomic_write_json, save_npz

__all__ = ["Trainer", "TrainingDiverged", "train"]

#: How often (in steps) the running loss is read on the host for the progress bar and the NaN guard.
_HOST_READ_EVERY = 20


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Temporarily put ``module`` in eval mode (an objective's state does not advance in eval mode)."""
    was_training = module.training
    module.train(False)
    try:
        yield
    finally:
        module.train(was_training)


@contextlib.contextmanager
def _frozen_batchnorm_stats(model: nn.Module) -> Iterator[None]:
    """Keep BatchNorm running statistics unchanged (SAM's second pass must not update them twice)."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.momentum))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


class Trainer:
    """Trains one configuration into one run directory.

    Args:
        config: the validated configuration.
        run_dir: where the run writes its files (created if needed).
        resume: continue from ``run_dir/checkpoint.pt``.
    """

    def __init__(self, config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> None:
        from caltrain import data as data_mod, losses, models

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

        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.data = data_mod.create(config.data.name, root=config.data.root, **config.data.options)
        self.num_classes = self.data.num_classes
        self.objective = losses.create(
            config.loss.name, num_classes=self.num_classes, num_samples=len(self.data.train), **config.loss.options
        ).to(self.device)
        model_name = config.model.name
        if model_name == "auto":
            model_name = "mlp" if self.data.kind == "features" else "cnn"
        self.model_name = model_name
        torch.manual_seed(config.seed)  # model initialisation depends on the seed only
        model = models.create(
            model_name, num_classes=self.objective.num_outputs, in_channels=self.data.input_shape[0],
            input_shape=tuple(self.data.input_shape), **config.model.options,
        ).to(self.device)
        self.channels_last = config.channels_last is True or (
            config.channels_last == "auto" and len(self.data.input_shape) == 3
        )
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
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

        norm = (tuple(self.data.mean), tuple(self.data.std))
        self.objective.set_input_domain(**_input_domain(norm, tuple(self.data.input_shape), self.device))
        self._loader_kw = loader_kw = dict(device=self.device, seed=config.seed, normalization=norm,
                         rank=self.dist.rank, world_size=self.dist.world_size)
        self.train_loader = data_mod.make_loader(
            self.data.train, batch_size=config.data.batch_size, shuffle=True, augment=config.data.augment,
            drop_last=False, **loader_kw,
        )
        self.eval_loaders = {
            split: data_mod.make_loader(
                getattr(self.data, split), batch_size=config.data.eval_batch_size, shuffle=False, augment=False,
                drop_last=False, **loader_kw,
            )
            for split in ("train", "val", "test")
        }
        self.optimizer = build_optimizer(_unwrap(self.model), config.optim)
        self.scheduler = build_scheduler(
            self.optimizer, config.schedule, steps_per_epoch=len(self.train_loader), total_epochs=config.epochs
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
        self.generator = torch.Generator().manual_seed(config.seed + 7919 * self.dist.rank)
        self.abstention = config.eval.abstention
        if self.abstention is None:
            self.abstention = self.objective.abstention

        self.start_epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"value": None, "epoch": None}
        self.curvature = None
        if config.curvature.every_steps:
            from caltrain.analysis import CurvatureTracker

            self.curvature = CurvatureTracker(
                subset=config.curvature.subset, iters=config.curvature.iters, n_bins=config.eval.n_bins,
                batch_size=config.data.batch_size,
            )

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs in the model's memory format."""
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _objective_inputs(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, Any]:
        available = {"indices": idx, "model": self.forward_model, "inputs": x}
        return {key: available[key] for key in self.objective.requires}

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass and the objective's loss (mixup applied as configured); returns (loss, logits)."""
        mix = self.cfg.mixup
        if mix.mode == "none":
            if self.objective.needs_input_grad:
                x = x.detach().requires_grad_(True)
            with self._autocast():
                logits = self.forward_model(x)
                loss = self.objective(logits, y, **self._objective_inputs(x, idx))
            return loss, logits
        xm, perm, lam = mix_batch(x, mix.alpha, self.generator)
        if self.objective.needs_input_grad:
            xm = xm.detach().requires_grad_(True)
        with self._autocast():
            logits = self.forward_model(xm)
            with contextlib.ExitStack() as stack:
                if mix.mode == "regmixup":
                    stack.enter_context(_eval_mode(self.objective))
                first = self.objective(logits, y, **self._objective_inputs(xm, idx))
            with _eval_mode(self.objective):
                second = self.objective(logits, y[perm], **self._objective_inputs(xm, idx[perm]))
            mixed_loss = lam * first + (1 - lam) * second
            if mix.mode == "mixup":
                return mixed_loss, logits
            if self.objective.needs_input_grad:
                x = x.detach().requires_grad_(True)
            clean_logits = self.forward_model(x)
            clean = self.objective(clean_logits, y, **self._objective_inputs(x, idx))
        return clean + mix.weight * mixed_loss, clean_logits

    def _backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip is not None:
            self.scaler.unscale_(getattr(self.optimizer, "base_optimizer", self.optimizer))
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        loss, logits = self._forward_loss(x, y, idx)
        self._backward(loss)
        if isinstance(self.optimizer, SAM):
            self.optimizer.first_step()
            self.optimizer.zero_grad(set_to_none=True)
            with _eval_mode(self.objective), _frozen_batchnorm_stats(self.model):
                second_loss, _ = self._forward_loss(x, y, idx)
                self._backward(second_loss)
            self.optimizer.second_step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return loss.detach(), logits.detach()

    # ------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (float32) and labels of ``split`` in dataset order, gathered across ranks."""
        return self._predict(self.eval_loaders[split], len(getattr(self.data, split)))

    def _predict(self, loader, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.model.eval()
        logits_parts, label_parts, index_parts = [], [], []
        for x, y, idx in loader:
            with self._autocast():
                out = self.forward_model(self._prepare(x))
            logits_parts.append(out.float())
            label_parts.append(y)
            index_parts.append(idx)
        logits = torch.cat(logits_parts)
        labels, index = torch.cat(label_parts), torch.cat(index_parts)
        if self.dist.enabled:
            logits, labels, index = (all_gather_rows(t, self.dist) for t in (logits, labels, index))
        ordered = logits.new_empty((n, logits.shape[1]))
        ordered[index] = logits
        ordered_labels = labels.new_empty((n,))
        ordered_labels[index] = labels
        return ordered, ordered_labels

    def _metrics(self, logits: torch.Tensor, labels: torch.Tensor, true_posterior: torch.Tensor | None) -> dict[str, float]:
        from caltrain import metrics

        probs = torch.softmax(logits.double(), dim=1)
        return metrics.summarize(
            probs, labels, n_bins=self.cfg.eval.n_bins, true_posterior=true_posterior, abstention=self.abstention
        )

    def _posterior(self, split: str, index: torch.Tensor | None = None) -> torch.Tensor | None:
        post = getattr(self.data, split).true_posterior
        if post is None:
            return None
        post = post.to(self.device)
        return post if index is None else post[index]

    def evaluate(self, splits: tuple[str, ...] = ("val", "test")) -> dict[str, dict[str, float]]:
        """Metrics of the current model on ``splits`` (probabilities from a float64 softmax of the logits)."""
        return {s: self._metrics(*self.predict(s), self._posterior(s)) for s in splits}

    # ------------------------------------------------------------- lifecycle
    def _objective_sample_state(self) -> dict[str, torch.Tensor]:
        names = getattr(self.objective, "sample_state", ())
        return {name: getattr(self.objective, name) for name in names}

    def _selection_value(self, record: dict[str, Any]) -> float | None:
        select = self.cfg.eval.select
        if select == "last":
            return None
        key, sign = ("nll", -1.0) if select == "best_val_loss" else ("accuracy", 1.0)
        return sign * record["val"][key]

    def _checkpoint_state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "step": self.step,
            "model": _unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "objective": self.objective.state_dict(),
            "rng": capture_rng(self.generator),
            "curvature": self.curvature.state_dict() if self.curvature is not None else None,
            "history": self.history,
            "best": self.best,
            "config": config_to_dict(self.cfg),
        }

    def _restore(self) -> None:
        ckpt = load_checkpoint(self.run.checkpoint, map_location=self.device)
        if ckpt["config"] != config_to_dict(self.cfg):
            raise ValueError(
                f"{self.run.checkpoint}: the checkpoint was made with a different configuration than {self.run.config}"
            )
        _unwrap(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.objective.load_state_dict(ckpt["objective"])
        restore_rng({k: v.cpu() if torch.is_tensor(v) else v for k, v in ckpt["rng"].items()}, self.generator)
        if self.curvature is not None and ckpt.get("curvature") is not None:
            self.curvature.load_state_dict(ckpt["curvature"])
        self.start_epoch = ckpt["epoch"] + 1
        self.step = ckpt["step"]
        self.history = ckpt["history"]
        self.best = ckpt["best"]
        if self.dist.is_main:
            self.run.write_metrics(self.history)  # drop records logged after the checkpoint

    def _write_start_files(self) -> None:
        import platform

        self.run.write_config(config_to_dict(self.cfg))
        self.run.write_meta({
            "caltrain_version": caltrain.__version__,
            "git_revision": git_revision(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "model": self.model_name,
            "num_parameters": sum(p.numel() for p in _unwrap(self.model).parameters()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })

    def _train_epoch(self, epoch: int, progress) -> dict[str, Any]:
        self.model.train()
        self.objective.train()
        self.objective.on_epoch_start(epoch)
        self.train_loader.set_epoch(epoch)
        snapshot = {k: v.clone() for k, v in self._objective_sample_state().items()} if self.dist.enabled else {}
        progress.start_epoch(epoch, self.cfg.epochs, len(self.train_loader))
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        n_seen = 0
        logits_parts, label_parts, index_parts = [], [], []
        records = []
        for i, (x, y, idx) in enumerate(self.train_loader):
            loss, logits = self._train_step(self._prepare(x), y, idx)
            nonfinite |= ~torch.isfinite(loss)
            loss_sum += loss.double() * y.shape[0]
            n_seen += y.shape[0]
            logits_parts.append(logits.float())
            label_parts.append(y)
            index_parts.append(idx)
            if (i + 1) % _HOST_READ_EVERY == 0 or i + 1 == len(self.train_loader):
                if bool(nonfinite):
                    raise TrainingDiverged(
                        f"non-finite loss at epoch {epoch + 1}, step {self.step}; stopping. The last good checkpoint "
                        f"is {self.run.checkpoint if self.run.checkpoint.exists() else '(none yet)'}; try a lower "
                        "learning rate, gradient clipping (optim.grad_clip) or fp32"
                    )
                progress.update(i + 1, float(loss_sum) / max(n_seen, 1), float("nan"))
            if self.cfg.eval.every_steps and self.step % self.cfg.eval.every_steps == 0:
                records.append(self._step_record(epoch, i + 1))
                self.model.train()
            if self.curvature is not None and self.step % self.cfg.curvature.every_steps == 0:
                records.append({"epoch": epoch + (i + 1) / len(self.train_loader), "step": self.step,
                                 "curvature": self._track_curvature()})
                self.model.train()
        merge_sample_state(self._objective_sample_state(), snapshot, self.dist)
        logits = torch.cat(logits_parts)
        labels, index = torch.cat(label_parts), torch.cat(index_parts)
        if self.dist.enabled:
            logits, labels, index = (all_gather_rows(t, self.dist) for t in (logits, labels, index))
            torch.distributed.all_reduce(loss_sum)
            n_total = torch.tensor(float(n_seen), device=self.device)
            torch.distributed.all_reduce(n_total)
            n_seen = int(n_total)
        train_metrics = self._metrics(logits, labels, self._posterior("train", index))
        train_metrics["loss"] = float(loss_sum) / n_seen
        return {"train": train_metrics, "step_records": records}

    def _step_record(self, epoch: int, batches_done: int) -> dict[str, Any]:
        splits = tuple(s for s in self.cfg.eval.splits if s != "train")
        return {"epoch": epoch + batches_done / len(self.train_loader), "step": self.step, **self.evaluate(splits)}

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
        return self.curvature(_unwrap(self.model), torch.cat(xs)[:n], torch.cat(ys)[:n])

    def fit(self, progress: Progress | None = None) -> dict[str, Any]:
        """Train for ``config.epochs`` epochs (from the checkpoint when resuming); returns the summary.

        Args:
            progress: where progress goes (default: a bar on a terminal, lines in logs, nothing when quiet).
        """
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
                record: dict[str, Any] = {"epoch": epoch + 1, "step": self.step}
                if "train" in self.cfg.eval.splits:
                    record["train"] = out["train"]
                else:
                    record["train"] = {"loss": out["train"]["loss"]}
                needed = tuple(s for s in ("val", "test") if s in self.cfg.eval.splits or s == "val")
                val_logits = None
                for split in needed:
                    logits, labels = self.predict(split)
                    record[split] = self._metrics(logits, labels, self._posterior(split))
                    if split == "val":
                        val_logits, val_labels = logits, labels
                record["lr"] = self.scheduler.get_last_lr()[0]
                record["time_s"] = time.perf_counter() - t0
                if self.objective.needs_validation:
                    self.objective.on_epoch_end(epoch, val_logits=val_logits, val_labels=val_labels)
                else:
                    self.objective.on_epoch_end(epoch)
                self.history.extend(out["step_records"])
                self.history.append(record)
                self._update_selection(epoch, record)
                if self.dist.is_main and ((epoch + 1) % self.cfg.checkpoint_every == 0 or epoch + 1 == self.cfg.epochs):
                    save_checkpoint(self.run.checkpoint, self._checkpoint_state(epoch))
                if self.dist.is_main:
                    self.run.write_metrics(self.history)
                progress.end_epoch(record)
        finally:
            progress.close()
        summary = self._finish(time.perf_counter() - t_start)
        if self.dist.enabled:
            torch.distributed.barrier()
        return summary

    def _update_selection(self, epoch: int, record: dict[str, Any]) -> None:
        value = self._selection_value(record)
        if value is None:
            return
        if self.best["value"] is None or value > self.best["value"]:
            self.best = {"value": value, "epoch": epoch + 1}
            if self.dist.is_main:
                save_checkpoint(self.run.best, {"model": _unwrap(self.model).state_dict(), "epoch": epoch + 1})

    def _finish(self, train_seconds: float) -> dict[str, Any]:
        from caltrain import posthoc

        selected_epoch = self.cfg.epochs
        if self.cfg.eval.select != "last" and self.best["epoch"] is not None:
            _unwrap(self.model).load_state_dict(load_checkpoint(self.run.best, self.device)["model"])
            selected_epoch = self.best["epoch"]
        logits = {s: self.predict(s) for s in ("val", "test")}
        result: dict[str, Any] = {
            "epochs": self.cfg.epochs,
            "selected_epoch": selected_epoch,
            "steps": self.step,
            "train_seconds": train_seconds,
            "val": self._metrics(*logits["val"], self._posterior("val")),
            "test": self._metrics(*logits["test"], self._posterior("test")),
            "posthoc": {},
            "posthoc_params": {},
            "abstention": self.abstention,
        }
        val_z, val_y = logits["val"]
        test_z, test_y = logits["test"]
        for name in self.cfg.eval.posthoc:
            calibrator = posthoc.create(name)
            calibrator.fit(self._posthoc_logits(val_z), val_y)
            probs = calibrator.predict_proba(self._posthoc_logits(test_z))
            from caltrain import metrics

            result["posthoc"][name] = metrics.summarize(
                probs, test_y, n_bins=self.cfg.eval.n_bins, true_posterior=self._posterior("test")
            )
            result["posthoc_params"][name] = getattr(calibrator, "params_", None) or _fitted_params(calibrator)
        if self.cfg.eval.ood and self.data.ood_names:
            result["ood"], logits["ood"] = self._ood(test_z)
        if self.dist.is_main:
            for split, (z, y) in logits.items():
                save_npz(self.run.logits(split), logits=z, labels=y)
            atomic_write_json(self.run.summary, result)
        return result

    def _ood(self, test_logits: torch.Tensor) -> tuple[dict[str, dict[str, float]], tuple[torch.Tensor, torch.Tensor]]:
        """MSP detection metrics of every paired OOD set against the test split, and the first set's logits.

        The score is the maximum softmax probability over the K class logits (an abstention output is dropped).
        """
        from caltrain import data as data_mod, metrics

        scores_in = metrics.ood_score(self._posthoc_logits(test_logits).double(), "msp", from_logits=True)
        out, first = {}, None
        for name, split in self.data.ood().items():
            loader = data_mod.make_loader(split, batch_size=self.cfg.data.eval_batch_size, shuffle=False,
                                          augment=False, drop_last=False, **self._loader_kw)
            z, y = self._predict(loader, len(split))
            scores_out = metrics.ood_score(self._posthoc_logits(z).double(), "msp", from_logits=True)
            out[name] = metrics.ood_detection(scores_in, scores_out)
            first = first or (z, y)
        return out, first

    def _posthoc_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrators see the K class logits (an abstention output is dropped)."""
        return logits[:, : self.num_classes]


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


def _fitted_params(calibrator: Any) -> dict[str, Any]:
    """Scalar fitted attributes (``name_``) of a calibrator, for the summary."""
    out = {}
    for key, value in vars(calibrator).items():
        if key.endswith("_") and not key.startswith("_"):
            if isinstance(value, (int, float)):
                out[key.rstrip("_")] = value
            elif torch.is_tensor(value) and value.numel() == 1:
                out[key.rstrip("_")] = float(value)
    return out


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (or resume it) and return the summary (also in ``summary.json``)."""
    return Trainer(config, run_dir, resume=resume).fit()
