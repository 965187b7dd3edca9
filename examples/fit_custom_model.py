"""Your own model and your own data through caltrain: ``caltrain.fit`` on a small CNN and a ``Dataset``.

- ``DigitImages`` is a plain ``torch.utils.data.Dataset`` yielding ``(image, label)``: scikit-learn's 8x8 digits
  as 1x8x8 float images (no index: caltrain supplies it to the objectives that keep per-sample state);
- ``SmallCNN`` is a user-defined ``nn.Module``; for Socrates (an abstention objective, K + 1 outputs) its head
  gets the extra output with ``caltrain.models.with_abstention_head``;
- ``caltrain.fit`` trains it with Socrates and with MbLS, each into a run directory laid out as ``caltrain train``
  writes one (``config.yaml``, ``metrics.jsonl``, checkpoints, logits, calibrators, ``summary.json``), which
  ``caltrain report`` renders; a killed run continues with ``resume=True`` and ends with the numbers of an
  uninterrupted one.

Run: ``python examples/fit_custom_model.py --out runs/fit-example`` (CPU, under a minute), then
``caltrain report runs/fit-example/socrates``. Kill it during training and run it again with ``--resume``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import caltrain


class DigitImages(Dataset):
    """scikit-learn's 8x8 digits as ``(float32 [1, 8, 8] in [0, 1], int label)``; ``part`` picks a fixed split."""

    def __init__(self, part: str) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        labels = torch.tensor(digits.target, dtype=torch.int64)
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
        cut = int(0.8 * len(labels))
        index = order[:cut] if part == "train" else order[cut:]
        self.images, self.labels = images[index], labels[index]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


class SmallCNN(nn.Module):
    """Two convolutions and a linear head (``fc``, its last layer: what ``with_abstention_head`` widens)."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.fc = nn.Linear(8 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build_model(loss: str, seed: int = 0) -> nn.Module:
    """The CNN for ``loss``: K outputs, or K + 1 for an abstention objective (Socrates)."""
    torch.manual_seed(seed)
    model = SmallCNN()
    return caltrain.models.with_abstention_head(model) if loss == "socrates" else model


#: The two objectives trained, with their hyperparameters (``caltrain losses`` lists them).
OBJECTIVES: dict[str, dict[str, Any]] = {"socrates": {}, "mbls": {"margin": 10.0}}


def run(loss: str, out_dir: str | Path, *, epochs: int = 8, resume: bool = False, quiet: bool = False,
        batch_size: int = 64) -> caltrain.train.fit.FitResult:
    """Train ``SmallCNN`` with ``loss`` on ``DigitImages`` into ``out_dir / loss`` (or continue it)."""
    train = DataLoader(DigitImages("train"), batch_size=batch_size, shuffle=True)  # your loader: rebuilt with indices
    return caltrain.fit(
        build_model(loss), train, test=DigitImages("test"), loss=loss, loss_options=OBJECTIVES[loss],
        epochs=epochs, out=Path(out_dir) / loss, resume=resume,
        optim={"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4}, schedule={"name": "cosine"},
        eval={"posthoc": ["ts"]}, device="cpu", threads=1, seed=0, quiet=quiet,
    )


def main(out_dir: str | Path, epochs: int = 8, *, resume: bool = False, quiet: bool = False,
         objectives: tuple[str, ...] = tuple(OBJECTIVES)) -> dict[str, dict[str, Any]]:
    """Train every objective of ``objectives`` into ``out_dir/<loss>``; returns each run's summary."""
    summaries = {}
    for loss in objectives:
        result = run(loss, out_dir, epochs=epochs, resume=resume, quiet=quiet)
        test = result.summary["test"]
        after = result.summary["posthoc"].get("ts", {})
        print(f"{loss}: {result.run_dir}: test accuracy {test['accuracy']:.3f}, ece {test['ece']:.4f}"
              + (f", after ts ece {after['ece']:.4f}" if after else ""))
        summaries[loss] = result.summary
    return summaries


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/fit-example")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--resume", action="store_true", help="continue the runs in --out")
    parser.add_argument("--loss", choices=tuple(OBJECTIVES), action="append", help="only this objective")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    main(args.out, args.epochs, resume=args.resume, quiet=args.quiet, objectives=tuple(args.loss or OBJECTIVES))
