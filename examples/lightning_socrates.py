"""A caltrain objective in PyTorch Lightning: Socrates, with its per-sample target table, in a LightningModule.

What caltrain's own trainer does for an objective, done here with Lightning hooks (docs/losses.md, "In your own
training loop"):

- the dataset yields ``(x, y, index)``, and ``training_step`` hands ``indices=`` to the objective (Socrates lists
  ``"indices"`` in ``objective.requires``);
- ``on_train_epoch_start`` / ``on_train_epoch_end`` call the objective's ``on_epoch_start`` / ``on_epoch_end``
  (the latter with the epoch's validation logits when ``objective.needs_validation``);
- the objective is a submodule of the LightningModule, so its state (the [N, K] target table ``targets`` and
  ``seen``) is in ``state_dict()`` and in every Lightning checkpoint, and ``load_from_checkpoint`` restores it;
- under DDP (``strategy="ddp"``) the table is rank-local state, not a buffer, so Lightning's DDP wrapper does not
  overwrite it with rank 0's; ``on_train_epoch_end`` merges the rows each rank advanced
  (``caltrain.train.distributed.merge_sample_state``), before ``ModelCheckpoint`` saves
  (``save_on_train_epoch_end=True``);
- a caltrain metric (ECE, under the objective's abstention convention) is logged on validation.

Run: ``pip install "caltrain[lightning]"; python examples/lightning_socrates.py`` (CPU, a few seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, Dataset

from caltrain import losses, metrics
from caltrain.train.distributed import DistContext, merge_sample_state


class IndexedDataset(Dataset):
    """``(x, y, index)`` triples: the index is the row of the sample in the objective's per-sample state."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.x[i], self.y[i], i


def make_data(n: int, *, dim: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping Gaussian blobs: a task a small MLP does not solve perfectly (so calibration matters)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g) * 1.5
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, dim, generator=g)
    return x, y


class SocratesModule(pl.LightningModule):
    """A tiny MLP trained with ``caltrain.losses.create("socrates", ...)`` (K+1 outputs, the last is "unknown")."""

    def __init__(
        self, *, dim: int, num_classes: int, num_samples: int, hidden: int = 32, lr: float = 0.05,
        momentum: float = 0.8,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # a submodule: its state (targets, seen, epoch) is in self.state_dict(), hence in every checkpoint
        self.objective = losses.create("socrates", num_classes=num_classes, num_samples=num_samples, momentum=momentum)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, self.objective.num_outputs))
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._val_epoch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._snapshot: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _dist(self) -> DistContext:
        return DistContext(rank=self.global_rank, world_size=self.trainer.world_size)

    def on_train_epoch_start(self) -> None:
        self.objective.on_epoch_start(self.current_epoch)
        if self._dist().enabled:  # the rows before this epoch, to merge what each rank advanced
            self._snapshot = {name: getattr(self.objective, name).clone() for name in self.objective.sample_state}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, index = batch
        extra = {"indices": index} if "indices" in self.objective.requires else {}
        loss = self.objective(self(x), y, **extra)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y, _ = batch
        self._val.append((self(x).detach(), y))

    def on_validation_epoch_end(self) -> None:
        logits = torch.cat([z for z, _ in self._val])
        labels = torch.cat([y for _, y in self._val])
        self._val.clear()
        if self._dist().enabled:  # every rank scores the whole split (exact metrics, not a mean of per-rank ones)
            logits = self.all_gather(logits).flatten(0, 1)
            labels = self.all_gather(labels).flatten(0, 1)
        self._val_epoch = (logits, labels)
        summary = metrics.summarize(logits.float(), labels, from_logits=True, abstention=self.objective.abstention)
        self.log("val_ece", summary["ece"])
        self.log("val_accuracy", summary["accuracy"])

    def on_train_epoch_end(self) -> None:
        # Lightning runs this epoch's validation before this hook, so needs_validation objectives get its logits
        if self._dist().enabled:
            merge_sample_state({name: getattr(self.objective, name) for name in self.objective.sample_state},
                               self._snapshot, self._dist())
        if self.objective.needs_validation and self._val_epoch is not None:
            val_logits, val_labels = self._val_epoch
            self.objective.on_epoch_end(self.current_epoch, val_logits=val_logits, val_labels=val_labels)
        else:
            self.objective.on_epoch_end(self.current_epoch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.net.parameters(), lr=self.hparams.lr, momentum=0.9)


def main(
    *, epochs: int = 2, num_samples: int = 512, val_size: int = 256, batch_size: int = 32, dim: int = 8,
    num_classes: int = 3, out_dir: str | Path = "lightning_socrates_runs", seed: int = 0, accelerator: str = "cpu",
    devices: int = 1, strategy: str = "auto",
) -> dict[str, Any]:
    """Train for ``epochs`` epochs; return the module, the last checkpoint's path and the logged metrics."""
    pl.seed_everything(seed, verbose=False)
    x, y = make_data(num_samples + val_size, dim=dim, num_classes=num_classes, seed=seed)
    train = DataLoader(IndexedDataset(x[:num_samples], y[:num_samples]), batch_size=batch_size, shuffle=True)
    val = DataLoader(IndexedDataset(x[num_samples:], y[num_samples:]), batch_size=batch_size)
    model = SocratesModule(dim=dim, num_classes=num_classes, num_samples=num_samples)
    checkpoint = ModelCheckpoint(dirpath=Path(out_dir), save_last=True, save_on_train_epoch_end=True)
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=devices, strategy=strategy, callbacks=[checkpoint],
        logger=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        default_root_dir=str(out_dir),
    )
    trainer.fit(model, train, val)
    return {
        "model": model,
        "checkpoint": checkpoint.last_model_path,
        "metrics": {key: float(value) for key, value in trainer.callback_metrics.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="lightning_socrates_runs")
    args = parser.parse_args()
    result = main(epochs=args.epochs, out_dir=args.out)
    print(result["metrics"], "checkpoint:", result["checkpoint"])
