"""GPU figures in one run (under 5 minutes): a training epoch, each objective's step cost, metrics at 1e8 samples.

Needs a CUDA device; without one it prints that and exits 0 (``--cpu-check`` runs every section at toy sizes
on the CPU instead, to check the script itself). Sections:

1. **A CIFAR-shaped epoch** (50,000 random uint8 3x32x32 images, 10 classes, resnet20, SGD, cross-entropy,
   random crop + flip, batch 128): caltrain's trainer epoch (``Trainer._train_epoch``: the split resident on
   the GPU, whole-batch augmentation, channels-last, the loss read on the host every 20 steps) in fp32 and
   bf16 autocast, against the loop a user writes (a ``DataLoader`` whose ``Dataset`` augments one image at a
   time on the CPU, 8 workers, pinned memory, ``loss.item()`` every step). Reference row: airbench94's
   published time (3.83 s for 9.9 epochs on an A100-SXM4-80GB, its own 9-layer network in fp16, batch 1024:
   0.39 s an epoch; github.com/KellerJordan/cifar10-airbench), the fastest known CIFAR-10 loop: another
   network and card, so a scale, not a ratio.
2. **Objective step cost**: ``bench/step_cost.py`` on the GPU (resnet20, batch 128, every classification
   objective against CE; CalMO per PGD pass).
3. **Metrics at N = 1e8, K = 10** (float32 probabilities on the GPU): caltrain ``expected_calibration_error``
   (validated) and ``CalibrationError`` streamed in batches of 1e7, against torchmetrics
   ``multiclass_calibration_error``; seconds (best of 3, synchronised) and the values (float64 vs float32
   accumulation).

    python bench/gpu.py [--json out.json]         # on a machine with a GPU
    python bench/gpu.py --cpu-check               # every section at toy sizes on the CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: airbench94.py as published: seconds for its 9.9 epochs on an A100-SXM4-80GB (README and file header).
AIRBENCH94_SECONDS, AIRBENCH94_EPOCHS = 3.83, 9.9
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_cifar(n_train: int, n_eval: int, seed: int = 0):
    """A ``DatasetSplits`` of random uint8 CIFAR-shaped images (the timing does not depend on the pixels)."""
    from caltrain.data.splits import DatasetSplits, Split

    g = torch.Generator().manual_seed(seed)

    def split(n):
        return Split(x=torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                     y=torch.randint(0, 10, (n,), generator=g))

    return DatasetSplits(name="random_cifar", train=split(n_train), val=split(n_eval), test=split(n_eval),
                         num_classes=10, input_shape=(3, 32, 32), mean=MEAN, std=STD, kind="image")


class _Silent:
    def start_epoch(self, *a):
        pass

    def update(self, *a):
        pass


def caltrain_epochs(data, device: torch.device, batch: int, epochs: int, precision: str = "fp32") -> float:
    """Seconds per epoch of the trainer's own epoch (after one warm-up epoch)."""
    from caltrain.train.config import build_config
    from caltrain.train.trainer import Trainer

    class RandomCifarTrainer(Trainer):
        def _create_data(self):
            return data

    cfg = build_config(overrides=[
        "data.name=synthetic_image", "model.name=resnet20", f"data.batch_size={batch}", "data.augment=true",
        "optim.name=sgd", "optim.lr=0.05", "quiet=true", f"epochs={epochs + 1}", "eval.posthoc=[]",
        f"device={device.type}", f"precision={precision}", "eval.splits=[val]",
    ])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = RandomCifarTrainer(cfg, tmp)
        times = []
        for epoch in range(epochs + 1):
            sync(device)
            t0 = time.perf_counter()
            trainer._train_epoch(epoch, _Silent())
            sync(device)
            times.append(time.perf_counter() - t0)
    return sum(times[1:]) / epochs


def plain_epochs(data, device: torch.device, batch: int, epochs: int, workers: int) -> float:
    """Seconds per epoch of a DataLoader loop with per-sample CPU augmentation (after one warm-up epoch)."""
    from caltrain import models
    from train import PerSampleDataset

    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=3, input_shape=(3, 32, 32)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    ds = PerSampleDataset(data.train.x.numpy(), data.train.y.numpy(), MEAN, STD)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    times = []
    for _ in range(epochs + 1):
        model.train()
        sync(device)
        t0 = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
        sync(device)
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / epochs


def metric_rows(device: torch.device, n: int, batch: int, repeat: int = 3) -> list[dict]:
    from torchmetrics.functional.classification import multiclass_calibration_error

    from caltrain import metrics as M

    g = torch.Generator(device=device).manual_seed(0)
    probs = torch.softmax(2.5 * torch.randn(n, 10, generator=g, device=device), dim=1)
    pred = probs.argmax(1)
    flip = torch.rand(n, generator=g, device=device) < 0.35
    labels = torch.where(flip, torch.randint(0, 10, (n,), generator=g, device=device), pred)

    def streamed():
        metric = M.CalibrationError(n_bins=15)
        for s in range(0, n, batch):
            metric.update(probs[s:s + batch], labels[s:s + batch])
        return metric.compute()

    calls = {
        "caltrain expected_calibration_error": lambda: M.expected_calibration_error(probs, labels),
        f"caltrain CalibrationError, batches of {batch:.0e}": streamed,
        "torchmetrics multiclass_calibration_error": lambda: multiclass_calibration_error(
            probs, labels, num_classes=10, n_bins=15),
    }
    rows = []
    for name, fn in calls.items():
        value = float(fn())  # warm-up
        best = float("inf")
        for _ in range(repeat):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            best = min(best, time.perf_counter() - t0)
        rows.append({"impl": name, "seconds": best, "value": value})
    base = rows[0]["seconds"]
    for r in rows:
        r["ratio_to_caltrain"] = r["seconds"] / base
    return rows


def main() -> int:
    from _machine import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-check", action="store_true", help="run every section at toy sizes on the CPU")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers of the plain loop")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.cpu_check:
        print("bench/gpu.py: no CUDA device here (torch.cuda.is_available() is False); nothing to measure. "
              "Run it on a machine with a GPU, or with --cpu-check to check the script on the CPU.")
        return 0
    start = time.perf_counter()
    device = torch.device("cpu" if args.cpu_check else "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    small = args.cpu_check
    n_train, epochs, metric_n, metric_batch = (512, 1, 200_000, 50_000) if small else (50_000, 2, 10**8, 10**7)
    machine = describe()
    print(json.dumps(machine), flush=True)
    out: dict = {"machine": machine, "device": str(device), "cpu_check": small}

    data = random_cifar(n_train, 256 if small else 1000)
    epoch = {
        "caltrain trainer epoch, fp32": caltrain_epochs(data, device, args.batch, epochs),
        "plain DataLoader loop, fp32": plain_epochs(data, device, args.batch, epochs, 0 if small else args.workers),
    }
    if device.type == "cuda":
        epoch["caltrain trainer epoch, bf16 autocast"] = caltrain_epochs(data, device, args.batch, epochs, "bf16")
    out["epoch_seconds"] = epoch
    scale = 50_000 / n_train
    print(f"\n1. resnet20 epoch of 50,000 CIFAR-shaped images, batch {args.batch} ({device}; "
          f"{'scaled from ' + str(n_train) + ' images' if small else 'measured'})")
    base = epoch["caltrain trainer epoch, fp32"]
    for name, s in epoch.items():
        print(f"  {name:<40} {s * scale:8.2f} s  {s / base:5.2f}x caltrain fp32")
    air = AIRBENCH94_SECONDS / AIRBENCH94_EPOCHS
    print(f"  {'airbench94 (published; A100, own net, fp16, batch 1024)':<40} {air:8.2f} s  (reference: another "
          f"network and card)")
    print(f"  elapsed {time.perf_counter() - start:.0f} s", flush=True)

    from step_cost import print_rows, step_costs

    out["step_costs"] = step_costs(device, 3 if small else 10,
                                   ["ce", "focal", "sat", "calmo"] if small else None)
    print_rows(out["step_costs"], f"2. resnet20 training step, batch 128, {device}")
    print(f"  elapsed {time.perf_counter() - start:.0f} s", flush=True)

    out["metrics"] = metric_rows(device, metric_n, metric_batch)
    print(f"\n3. top-label ECE (15 bins), N = {metric_n:.0e}, K = 10, float32 on {device}")
    for r in out["metrics"]:
        print(f"  {r['impl']:<44} {r['seconds']:8.3f} s  {r['ratio_to_caltrain']:5.2f}x  ECE {r['value']:.8f}")
    out["elapsed_seconds"] = time.perf_counter() - start
    print(f"\ntotal {out['elapsed_seconds']:.0f} s; load after {describe()['load']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
