"""CalMO's coupling study in miniature: does ECE track Gauss-Newton sharpness along training?

Morosini et al. ("Too Sharp, Too Sure", arXiv 2604.20614, METHODS.md 1.3 (a)) train a 2 x 200 tanh MLP on
a 5k/5k CIFAR-10 split with several optimisers, measure ECE and curvature along the trajectory, and
report the Pearson correlation between them (test ECE vs sharpness r = .96-.98 for GD/SGD/SAM). This
module runs the same protocol on a small synthetic problem in under a minute on one CPU core:

    python -m caltrain.analysis.coupling --threads 1             # GD, SGD and AdamW, 1000 steps each
    python -m caltrain.analysis.coupling --optimizers sgd --steps 2000 --json coupling.json

Data (a reading: the paper's set is CIFAR-10; ours needs no download): a Gaussian mixture of K = 10
classes in d = 32 dimensions, class means of norm ``separation`` (3: a test accuracy near 85%), unit
within-class noise, 1000 training and 1000 test samples; optionally a fraction ``label_noise`` of training
labels flipped. The 2 x 200 tanh MLP interpolates the training set within the run, so its test
predictions grow overconfident. Every ``every`` steps two :class:`~caltrain.analysis.CurvatureTracker`
measure ECE, GN sharpness, batch sharpness and margin tail on 256 training and 256 test samples.

Reading: the paper's statement is that ECE and GN curvature are controlled by the same margin tail, which
holds for quantities measured on the *same* samples; its figure pairs test ECE with a sharpness whose
data it does not state. We report r on each split and r(test ECE, training-set GN sharpness); in this
miniature they differ in sign once the training set is memorised (docs/analysis.md has the numbers).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from caltrain.analysis.tracker import CurvatureTracker
from caltrain.utils.checks import check_choice, check_number, check_positive_int
from caltrain.utils.io import atomic_write_json

__all__ = ["OPTIMIZERS", "coupling_mlp", "coupling_study", "gaussian_mixture", "main", "pearson_r"]

#: The optimisers of the miniature study (CalMO also uses Muon and SAM, which live in caltrain.train).
OPTIMIZERS = ("gd", "sgd", "adamw")
#: Per-optimiser default learning rates (tuned so that 1000 steps overfit the noisy labels).
DEFAULT_LR = {"gd": 0.5, "sgd": 0.1, "adamw": 1e-3}


def gaussian_mixture(
    n_train: int,
    n_test: int,
    *,
    num_classes: int = 10,
    dim: int = 32,
    separation: float = 3.0,
    label_noise: float = 0.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test): Gaussian classes, a fraction of training labels flipped.

    x = mu_y + standard normal noise, mu_k drawn uniformly on the sphere of radius ``separation``;
    a ``label_noise`` fraction of training labels is replaced by a uniformly drawn class; test labels are
    clean. float32 inputs [n, dim], int64 labels [n].
    """
    generator = torch.Generator().manual_seed(int(seed))
    means = torch.randn(num_classes, dim, generator=generator)
    means = separation * means / means.norm(dim=1, keepdim=True)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, num_classes, (n,), generator=generator)
        return means[labels] + torch.randn(n, dim, generator=generator), labels

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    flip = torch.rand(n_train, generator=generator) < label_noise
    y_train = torch.where(flip, torch.randint(0, num_classes, (n_train,), generator=generator), y_train)
    return x_train, y_train, x_test, y_test


def coupling_mlp(in_features: int, num_classes: int, *, width: int = 200, depth: int = 2) -> nn.Sequential:
    """The study's network: ``depth`` hidden tanh layers of ``width`` units (CalMO: 2 x 200), then a linear head."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else width, width), nn.Tanh()]
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def pearson_r(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation of two equally long series (NaN when either is constant or shorter than 3)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    return torch.optim.SGD(params, lr=lr)


def coupling_study(
    *,
    optimizer: str = "sgd",
    lr: float | None = None,
    steps: int = 1000,
    every: int = 50,
    batch_size: int = 128,
    n_train: int = 1000,
    n_test: int = 1000,
    separation: float = 3.0,
    label_noise: float = 0.0,
    subset: int = 256,
    iters: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """Train the MLP with ``optimizer``; every ``every`` steps track ECE and curvature on both splits.

    Args:
        optimizer: "gd" (full-batch gradient descent), "sgd" (mini-batches of ``batch_size``) or "adamw".
        lr: learning rate (default: :data:`DEFAULT_LR` for the optimiser).
        steps: training steps; every: measurement interval in steps (step 0 and the last step included).
        batch_size: mini-batch size for "sgd" and "adamw", and the batch size of batch sharpness.
        n_train, n_test, separation, label_noise: the synthetic data (:func:`gaussian_mixture`).
        subset, iters: each tracker's evaluation subset and maximum Lanczos products.
        seed: seeds the data, the initialisation and the batch order.

    Returns:
        ``{"config": {...}, "records": [...], "pearson": {...}, "seconds": wall time}``. Each record has
        ``step``, ``loss`` (full training loss), ``train_accuracy``, ``test_accuracy`` and the
        :class:`~caltrain.analysis.CurvatureTracker` keys measured on ``subset`` training samples
        (prefix ``train_``) and on ``subset`` test samples (prefix ``test_``). ``pearson`` holds
        r(ECE, GN sharpness), r(ECE, batch sharpness) and r(ECE, log Q) on each split (``"test: ece~gn"``)
        and r(test ECE, GN sharpness on train), the pairing of the paper's figure (``"test ece~train gn"``).
    """
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    lr = check_number(DEFAULT_LR[optimizer] if lr is None else lr, "lr", low=0.0, low_inclusive=False)
    steps = check_positive_int(steps, "steps")
    every = check_positive_int(every, "every")
    batch_size = check_positive_int(batch_size, "batch_size")
    config = dict(optimizer=optimizer, lr=lr, steps=steps, every=every, batch_size=batch_size, n_train=n_train,
                  n_test=n_test, separation=separation, label_noise=label_noise, subset=subset, iters=iters,
                  seed=seed)
    started = time.perf_counter()
    x_train, y_train, x_test, y_test = gaussian_mixture(
        n_train, n_test, separation=separation, label_noise=label_noise, seed=seed
    )
    with torch.random.fork_rng(devices=[]):  # a seeded initialisation that leaves the global RNG alone
        torch.manual_seed(seed)
        model = coupling_mlp(x_train.shape[1], int(y_train.max()) + 1)
    opt = _optimizer(optimizer, model.parameters(), lr)
    trackers = {split: CurvatureTracker(subset=subset, iters=iters, batch_size=batch_size, seed=seed)
                for split in ("train", "test")}
    order = torch.Generator().manual_seed(seed + 1)
    records = []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            records.append({"step": step, **_accuracy_and_loss(model, x_train, y_train, x_test, y_test),
                            **_prefixed("train_", trackers["train"](model, x_train, y_train)),
                            **_prefixed("test_", trackers["test"](model, x_test, y_test))})
        if step == steps:
            break
        index = None if optimizer == "gd" else torch.randint(0, n_train, (batch_size,), generator=order)
        x, y = (x_train, y_train) if index is None else (x_train[index], y_train[index])
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return {"config": config, "records": records, "pearson": _correlations(records),
            "seconds": time.perf_counter() - started}


def _prefixed(prefix: str, record: dict[str, float]) -> dict[str, float]:
    return {prefix + key: value for key, value in record.items()}


def _correlations(records: list[dict[str, float]]) -> dict[str, float]:
    series = {key: [record[key] for record in records] for key in records[0]}
    out = {}
    for split in ("train", "test"):
        for short, key in (("gn", "gn_sharpness"), ("batch", "batch_sharpness"), ("log_q", "log_margin_tail")):
            out[f"{split}: ece~{short}"] = pearson_r(series[f"{split}_ece"], series[f"{split}_{key}"])
    out["test ece~train gn"] = pearson_r(series["test_ece"], series["train_gn_sharpness"])
    return out


@torch.no_grad()
def _accuracy_and_loss(model: nn.Module, x_train, y_train, x_test, y_test) -> dict[str, float]:
    train_logits, test_logits = model(x_train), model(x_test)
    return {
        "loss": float(nn.functional.cross_entropy(train_logits, y_train)),
        "train_accuracy": float((train_logits.argmax(1) == y_train).double().mean()),
        "test_accuracy": float((test_logits.argmax(1) == y_test).double().mean()),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m caltrain.analysis.coupling",
        description="CalMO's coupling study in miniature: Pearson r between ECE and GN sharpness along training.",
    )
    parser.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS))
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: per optimiser)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=50, help="measure every this many steps")
    parser.add_argument("--label-noise", type=float, default=0.0, help="fraction of training labels flipped")
    parser.add_argument("--separation", type=float, default=3.0, help="norm of the class means")
    parser.add_argument("--subset", type=int, default=256, help="samples per split the trackers measure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 is fastest for these small matrices on a busy machine)")
    parser.add_argument("--json", default=None, help="write every record and r to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study for each optimiser, print the correlations, optionally save everything as JSON."""
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(check_positive_int(args.threads, "threads"))
    results = {}
    print("optimizer   lr      test acc  test ECE  | r(ECE, GN sharpness): train   test  | "
          "r(test ECE, train GN) | seconds")
    for name in args.optimizers:
        result = coupling_study(optimizer=name, lr=args.lr, steps=args.steps, every=args.every,
                                label_noise=args.label_noise, separation=args.separation, subset=args.subset,
                                seed=args.seed)
        results[name] = result
        last, r = result["records"][-1], result["pearson"]
        print(f"{name:9s}  {result['config']['lr']:<7g} {last['test_accuracy']:8.3f}  {last['test_ece']:8.3f}  |"
              f"{r['train: ece~gn']:+29.3f} {r['test: ece~gn']:+6.3f}  | {r['test ece~train gn']:+21.3f} | "
              f"{result['seconds']:7.1f}")
    if args.json:
        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
