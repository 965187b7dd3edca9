"""A caltrain objective in the Hugging Face ``Trainer``: MbLS (or any registered objective, e.g. Socrates).

What caltrain's own trainer does for an objective, done here with the ``Trainer``'s extension points
(docs/losses.md, "In your own training loop"):

- ``CaltrainTrainer.compute_loss`` computes the model's logits and returns ``objective(logits, labels, ...)``,
  handing the objective the batch's dataset ``indices`` when it lists them in ``objective.requires`` (the dataset
  yields ``{"x", "labels", "index"}``; ``remove_unused_columns=False`` keeps ``index``);
- ``ObjectiveEpochCallback`` (a ``TrainerCallback``) calls the objective's ``on_epoch_start`` / ``on_epoch_end``
  from ``on_epoch_begin`` / ``on_epoch_end``;
- the objective is a submodule of the model (``Classifier.objective``), so its state is in the model's
  ``state_dict()``; the ``Trainer`` saves that ``state_dict()`` in every checkpoint (``model.safetensors``) and
  ``resume_from_checkpoint`` / ``load_state_dict`` restore it. MbLS has no state beyond its epoch counter;
  ``main(loss="socrates")`` trains Socrates, whose per-sample target table is saved the same way;
- under DDP the per-sample table is rank-local state, not a buffer, so the ``Trainer``'s DDP wrapper does not
  overwrite it with rank 0's; merge the rows every rank advanced at the epoch end with
  ``caltrain.train.distributed.merge_sample_state`` (a single process needs nothing).

Run: ``pip install "caltrain[hf]"; python examples/hf_trainer_mbls.py`` (CPU, a few seconds).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from caltrain import losses, metrics


class IndexedDataset(Dataset):
    """``{"x", "labels", "index"}`` dicts: ``index`` is the sample's row in per-sample objective state."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "labels": self.y[i], "index": i}


def make_data(n: int, *, dim: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping Gaussian blobs."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g) * 1.5
    y = torch.randint(0, num_classes, (n,), generator=g)
    return centres[y] + torch.randn(n, dim, generator=g), y


class Classifier(nn.Module):
    """A tiny MLP with ``objective.num_outputs`` outputs; the objective is a submodule, so it is checkpointed."""

    def __init__(self, objective: nn.Module, *, dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.objective = objective
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, objective.num_outputs))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, index: torch.Tensor | None = None) -> dict:
        return {"logits": self.net(x)}


class CaltrainTrainer(Trainer):
    """A ``Trainer`` whose loss is a caltrain objective."""

    def __init__(self, *args: Any, objective: nn.Module, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objective = objective

    def compute_loss(self, model: nn.Module, inputs: dict, return_outputs: bool = False, **kwargs: Any):
        outputs = model(x=inputs["x"])
        extra = {"indices": inputs["index"]} if "indices" in self.objective.requires else {}
        # model.train() / model.eval() reach the objective (a submodule): eval() reads its state without advancing it
        loss = self.objective(outputs["logits"], inputs["labels"], **extra)
        return (loss, outputs) if return_outputs else loss


class ObjectiveEpochCallback(TrainerCallback):
    """Calls the objective's epoch hooks (``state.epoch`` is a float: e at the start of epoch e, e + 1 at its end)."""

    def __init__(self, objective: nn.Module) -> None:
        self.objective = objective

    def on_epoch_begin(self, args, state, control, **kwargs):  # noqa: ANN001 (transformers' signature)
        self.objective.on_epoch_start(math.floor((state.epoch or 0.0) + 1e-6))

    def on_epoch_end(self, args, state, control, **kwargs):  # noqa: ANN001
        # objectives that need_validation (adafocal, cals) want the epoch's validation logits here: run
        # trainer.predict on the validation set and pass val_logits=, val_labels= (not needed by MbLS or Socrates)
        self.objective.on_epoch_end(math.ceil((state.epoch or 1.0) - 1e-6) - 1)


def main(
    *, loss: str = "mbls", epochs: int = 2, num_samples: int = 512, val_size: int = 256, batch_size: int = 32,
    dim: int = 8, num_classes: int = 3, out_dir: str | Path = "hf_trainer_runs", seed: int = 0,
    **loss_options: Any,
) -> dict[str, Any]:
    """Train for ``epochs`` epochs; return the model, the trainer, the last checkpoint and validation metrics."""
    torch.manual_seed(seed)
    x, y = make_data(num_samples + val_size, dim=dim, num_classes=num_classes, seed=seed)
    objective = losses.create(loss, num_classes=num_classes, num_samples=num_samples, **loss_options)
    model = Classifier(objective, dim=dim)
    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, learning_rate=0.05, lr_scheduler_type="constant",
        save_strategy="epoch", save_only_model=False, eval_strategy="no", logging_strategy="epoch",
        report_to=[], disable_tqdm=True, use_cpu=True, remove_unused_columns=False, label_names=["labels"],
        dataloader_num_workers=0, seed=seed,
    )
    trainer = CaltrainTrainer(
        model=model, args=args, train_dataset=IndexedDataset(x[:num_samples], y[:num_samples]),
        callbacks=[ObjectiveEpochCallback(objective)], objective=objective,
    )
    result = trainer.train()
    prediction = trainer.predict(IndexedDataset(x[num_samples:], y[num_samples:]))
    logits = torch.as_tensor(prediction.predictions)
    summary = metrics.summarize(logits.float(), y[num_samples:], from_logits=True, abstention=objective.abstention)
    checkpoints = sorted(Path(out_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return {
        "model": model, "trainer": trainer, "train_loss": float(result.training_loss),
        "checkpoint": checkpoints[-1] if checkpoints else None,
        "metrics": {"val_ece": summary["ece"], "val_accuracy": summary["accuracy"]},
    }


def load_checkpoint_state(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The model's ``state_dict()`` saved in a ``Trainer`` checkpoint directory (objective state included)."""
    path = Path(checkpoint)
    if (path / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    return torch.load(path / "pytorch_model.bin", weights_only=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", default="mbls")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="hf_trainer_runs")
    cli = parser.parse_args()
    out = main(loss=cli.loss, epochs=cli.epochs, out_dir=cli.out)
    print(out["metrics"], "train loss:", out["train_loss"], "checkpoint:", out["checkpoint"])
