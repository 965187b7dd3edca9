"""Do the embedded datasets show the problem? Plain cross-entropy at their defaults: train accuracy and test ECE.

For each embedded dataset, the recommended small model is trained with plain cross-entropy (Adam, batch 128,
no augmentation, no weight decay) through caltrain's own loader, then evaluated on the test split:
training accuracy (should be ~100%), test accuracy, mean confidence, ECE with 15 equal-width bins (a plain
NumPy implementation below, Guo et al. 2017) and, where the true posterior is known, the true calibration
error E|E[P(correct | x) | conf] - conf| (what the ECE estimates, with the known posterior in place of the
labels), the pointwise error E|P(correct | x) - conf(x)| and their difference, the grouping loss
(:mod:`caltrain.metrics.true_calibration`). "Over-confident" means mean confidence > test accuracy.

Run: ``PYTHONPATH=src python bench/embedded_miscalibration.py [--seeds 3] [--threads 1] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from caltrain import data, metrics, models

#: dataset -> (model name, model options, epochs, learning rate): the recipes docs/data.md reports.
RECIPES = {
    "synthetic": ("mlp", {"hidden": (256, 256)}, 30, 1e-3),
    "digits_flat": ("mlp", {"hidden": (256, 256)}, 50, 1e-3),
    "digits": ("cnn", {"widths": (32, 64, 128)}, 20, 1e-3),
    "synthetic_image": ("cnn", {"widths": (16, 32, 64), "stem_stride": 2}, 25, 3e-3),
}


def ece_15_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width bins (lo, hi], confidence 0 in the first bin."""
    conf = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(total)


@torch.no_grad()
def predict(model, split, ds) -> np.ndarray:
    model.eval()
    loader = data.make_loader(split, batch_size=512, shuffle=False, normalization=(ds.mean, ds.std))
    return torch.cat([F.softmax(model(x), 1) for x, _, _ in loader]).numpy()


def run(name: str, seed: int) -> dict:
    model_name, options, epochs, lr = RECIPES[name]
    ds = data.create(name, seed=seed)
    model = models.create(model_name, num_classes=ds.num_classes, input_shape=ds.input_shape, seed=seed, **options)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loader = data.make_loader(ds.train, batch_size=128, shuffle=True, seed=seed, normalization=(ds.mean, ds.std))
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        loader.set_epoch(epoch)
        for x, y, _ in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    train_probs, test_probs = predict(model, ds.train, ds), predict(model, ds.test, ds)
    y_test = ds.test.y.numpy()
    out = {
        "dataset": name,
        "seed": seed,
        "train_acc": float((train_probs.argmax(1) == ds.train.y.numpy()).mean()),
        "test_acc": float((test_probs.argmax(1) == y_test).mean()),
        "test_conf": float(test_probs.max(1).mean()),
        "test_ece": ece_15_bins(test_probs, y_test),
        "train_seconds": seconds,
    }
    if ds.test.true_posterior is not None:
        terms = metrics.true_calibration_decomposition(torch.from_numpy(test_probs), ds.test.true_posterior)
        out.update({key: float(value) for key, value in terms.items()})
    return out


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--datasets", nargs="*", default=list(RECIPES))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets:
        for seed in range(args.seeds):
            row = run(name, seed)
            rows.append(row)
            extra = (
                f" true CE {row['true_ece']:.3f} pointwise {row['pointwise_ce']:.3f} grouping {row['grouping_loss']:.3f}"
                if "true_ece" in row else ""
            )
            print(
                f"{name:16s} seed {seed}: train acc {row['train_acc']:.3f}  test acc {row['test_acc']:.3f}  "
                f"conf {row['test_conf']:.3f}  ECE {row['test_ece']:.3f}{extra}  ({row['train_seconds']:.1f} s)",
                flush=True,
            )
    if args.json:
        from caltrain.utils.io import atomic_write_json

        atomic_write_json(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
