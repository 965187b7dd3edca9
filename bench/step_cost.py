"""What each training objective adds to a real training step: resnet20 on a CIFAR-shaped batch, against CE.

One step is the trainer's own ``TrainStep`` (forward, the objective's loss with the inputs it ``requires``,
backward, plain SGD update) of caltrain's ``resnet20`` on a batch of 128 random 3x32x32 inputs (standardised
CIFAR-10 statistics; channels-last on the CPU, as the trainer does), with dataset indices drawn from a
50,000-sample training set (the per-sample-state objectives SAT and Socrates keep a table of that size).
Every registered classification objective gets its own model (same initial weights) and optimiser; the
baseline is the same step with ``ce``.

Timings are interleaved (every repeat runs every objective once, in a shuffled order) after two warm-up
steps each, every step from the same initial weights, and the median over repeats is reported, so a loaded
machine slows all of them alike.
Ratio = step time / CE step time. Targets (issue 16): logit-only objectives and SAT, Socrates, GenCE at most
1.10; CalMO is stated against its PGD steps: ``(ratio - 1) / (steps + 1)``, the cost of each extra
forward+backward pass (``steps`` attack passes and the adversarial pass) in CE steps.

    python bench/step_cost.py [--repeats 5] [--threads 1] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from caltrain import losses, models  # noqa: E402
from caltrain.train.config import MixupConfig  # noqa: E402
from caltrain.train.step import TrainStep  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def classification_objectives() -> list[str]:
    return [n for n in losses.names() if "classification" in losses.create(n, num_classes=10, num_samples=1).tasks]


def make_steps(device: torch.device, names: list[str], batch: int = 128, num_samples: int = 50_000,
               model_name: str = "resnet20") -> dict[str, callable]:
    """One ``TrainStep`` closure per objective, each with its own model copy and optimiser."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    channels_last = device.type == "cpu"
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    mean = torch.tensor(MEAN, device=device).view(-1, 1, 1)
    std = torch.tensor(STD, device=device).view(-1, 1, 1)
    base: dict[int, torch.nn.Module] = {}
    steps = {}
    for name in names:
        objective = losses.create(name, num_classes=10, num_samples=num_samples).to(device)
        objective.set_input_domain(std=std, low=(0 - mean) / std, high=(1 - mean) / std)
        objective.on_epoch_start(0)
        k = objective.num_outputs
        if k not in base:
            torch.manual_seed(0)
            base[k] = models.create(model_name, num_classes=k, in_channels=3, input_shape=(3, 32, 32))
        model = copy.deepcopy(base[k]).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.train()
        start = {key: v.clone() for key, v in model.state_dict().items()}
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)  # stateless: every timed step starts alike
        step = TrainStep(
            model=model, forward_model=model, objective=objective, optimizer=optimizer,
            scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
            scaler=torch.amp.GradScaler(device.type, enabled=False), mixup=MixupConfig(), grad_clip=None,
            generator=torch.Generator().manual_seed(0), autocast=contextlib.nullcontext,
        )
        gi = torch.Generator().manual_seed(1)

        def run(step=step, gi=gi):
            idx = torch.randint(0, num_samples, (batch,), generator=gi).to(device)
            step(x, y, idx)

        def reset(model=model, start=start):  # the initial weights again (not timed): no drift between objectives
            model.load_state_dict(start)

        steps[name] = (reset, run)
    return steps


def time_steps(steps: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per step of every ``(reset, step)`` pair, interleaved, after two warm-up steps each.

    Every timed step starts from the model's initial weights (``reset``, not timed), so the objectives are
    timed on the same weights and no run drifts into slower arithmetic (denormals) of its own.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for reset, fn in steps.values():
        for _ in range(2):
            reset()
            fn()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for r in range(repeats):
        random.Random(r).shuffle(order)
        for name in order:
            reset, fn = steps[name]
            reset()
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}


def step_costs(device: torch.device, repeats: int, names: list[str] | None = None) -> dict:
    names = names or classification_objectives()
    if "ce" not in names:
        names = ["ce", *names]
    times = time_steps(make_steps(device, names), repeats, device)
    base = times["ce"]
    rows = {}
    for name, t in times.items():
        row = {"seconds": t, "ratio": t / base}
        objective = losses.create(name, num_classes=10, num_samples=1)
        if "model" in objective.requires:  # the PGD attack: `steps` passes, then the adversarial pass
            row["pgd_steps"] = objective.steps
            row["per_extra_pass"] = (t / base - 1) / (objective.steps + 1)
        if objective.needs_input_grad:
            row["double_backward"] = True
        rows[name] = row
    return rows


def print_rows(rows: dict, title: str) -> None:
    print(f"\n{title}; CE step {rows['ce']['seconds'] * 1e3:.1f} ms")
    print(f"  {'objective':<16} {'ms':>9} {'x CE':>6}")
    for name, row in sorted(rows.items(), key=lambda kv: kv[1]["ratio"]):
        notes = []
        if "pgd_steps" in row:
            notes.append(f"{row['pgd_steps']} PGD steps + the adversarial pass: "
                         f"{row['per_extra_pass']:.2f} CE steps per pass if they were all")
        if row.get("double_backward"):
            notes.append("margin-gradient penalty: double backward")
        if not notes and row["ratio"] > 1.10:
            notes.append("> 1.10")
        extra = f"  ({'; '.join(notes)})" if notes else ""
        print(f"  {name:<16} {row['seconds'] * 1e3:9.1f} {row['ratio']:6.3f}{extra}")
    if {"calmo", "calmo_robust", "calmo_flat"} <= set(rows):
        attack, penalty = rows["calmo_robust"]["ratio"] - 1, rows["calmo_flat"]["ratio"] - 1
        print(f"  CalMO = CE + attack ({attack:.2f} CE steps for {rows['calmo']['pgd_steps']} PGD steps and the "
              f"adversarial pass: {attack / (rows['calmo']['pgd_steps'] + 1):.2f} each) + penalty ({penalty:.2f}): "
              f"{1 + attack + penalty:.2f} predicted, {rows['calmo']['ratio']:.2f} measured")


def main() -> None:
    from _machine import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default=None, help="comma-separated objectives (default: every one)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = describe()
    print(json.dumps(machine))
    rows = step_costs(device, args.repeats, args.only.split(",") if args.only else None)
    machine_after = describe()
    print_rows(rows, f"resnet20 step, batch 128, {device}, {args.threads} thread(s), median of {args.repeats}")
    print(f"load before {machine['load']}, after {machine_after['load']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "load_after": machine_after["load"],
                                               "threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
