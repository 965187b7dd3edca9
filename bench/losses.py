"""Forward+backward time of every training objective relative to cross-entropy, side by side in one run.

- Logit-only objectives (those needing at most dataset indices) on random logits [N, K] = [256, 10] and
  [256, 100]: one step is ``objective(logits, labels[, indices]).backward()``; the baseline is what a user would
  otherwise write, ``torch.nn.functional.cross_entropy(logits, labels).backward()``. Target: within 1.5x of it.
- Model-aware objectives (CalMO and its ablations): one full training step (forward, loss, backward) of a small
  CNN on [64, 3, 32, 32] inputs, relative to the same step with plain cross-entropy.

Timings are interleaved (every repeat runs every objective once, in a shuffled order) and the median over
repeats is reported, so a loaded machine slows all of them alike.

Run: ``PYTHONPATH=src python bench/losses.py [--repeats 30] [--inner 20] [--threads 1] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from caltrain import losses


def _logit_step(fn, shape, outputs, needs_indices):
    n, k = shape
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, outputs, generator=g).requires_grad_(True)
    y = torch.randint(0, k, (n,), generator=g)
    kwargs = {"indices": torch.arange(n)} if needs_indices else {}

    def step():
        z.grad = None
        fn(z, y, **kwargs).backward()

    return step


def _model_step(objective, model, x, y):
    idx = torch.arange(x.shape[0])
    available = {"indices": idx, "model": model}

    def step():
        model.zero_grad(set_to_none=True)
        xi = x.detach().requires_grad_(True) if objective.needs_input_grad else x
        kwargs = {key: (xi if key == "inputs" else available[key]) for key in objective.requires}
        objective(model(xi), y, **kwargs).backward()

    return step


def _time(steps: dict, repeats: int, inner: int) -> dict[str, float]:
    """Median seconds per call of every step, interleaved."""
    for step in steps.values():  # warm-up
        for _ in range(3):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            t0 = time.perf_counter()
            for _ in range(inner):
                steps[name]()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(v) for name, v in samples.items()}


def _cnn(num_outputs: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_outputs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--inner", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, dict[str, float]] = {}

    for shape in ((256, 10), (256, 100)):
        k = shape[1]
        steps = {"F.cross_entropy (baseline)": _logit_step(F.cross_entropy, shape, k, False)}
        for name in losses.names():
            obj = losses.create(name, num_classes=k, num_samples=shape[0])
            if obj.requires - {"indices"}:
                continue
            obj.on_epoch_start(0)
            steps[name] = _logit_step(obj, shape, obj.num_outputs, "indices" in obj.requires)
        times = _time(steps, args.repeats, args.inner)
        base = times["F.cross_entropy (baseline)"]
        label = f"logits [{shape[0]}, {shape[1]}]"
        results[label] = {name: t / base for name, t in times.items()}
        print(f"\n{label}: fwd+bwd, median of {args.repeats}x{args.inner}, {args.threads} thread(s); "
              f"baseline {base * 1e6:.1f} us")
        for name, t in sorted(times.items(), key=lambda kv: kv[1]):
            flag = "" if t / base <= 1.5 else "  > 1.5x"
            print(f"  {name:<28} {t * 1e6:9.1f} us  {t / base:5.2f}x{flag}")

    x = torch.rand(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))
    steps = {}
    model = _cnn(10)
    ce = losses.create("ce", num_classes=10)
    steps["ce (baseline)"] = _model_step(ce, model, x, y)
    for name in losses.names():
        obj = losses.create(name, num_classes=10, num_samples=64)
        if obj.requires <= {"indices"}:
            continue
        steps[name] = _model_step(obj, model, x, y)
    times = _time(steps, max(3, args.repeats // 6), max(1, args.inner // 10))
    base = times["ce (baseline)"]
    label = "CNN step [64, 3, 32, 32]"
    results[label] = {name: t / base for name, t in times.items()}
    print(f"\n{label}: forward + loss + backward; baseline {base * 1e3:.2f} ms")
    for name, t in sorted(times.items(), key=lambda kv: kv[1]):
        print(f"  {name:<28} {t * 1e3:9.2f} ms  {t / base:5.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
