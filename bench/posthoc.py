"""Fit time and NLL reached: caltrain's calibrators against plain LBFGS-on-T and netcal's temperature scaling.

Data: ``--n`` validation and ``--n`` test samples with K = ``--classes`` classes (default 10,000 x 100, a
CIFAR-100-sized validation set). Calibrated logits ``z ~ scale * N(0, I)`` give labels ``y ~ softmax(z)``; the
"model" outputs ``T0 * z`` (T0 = 2.5, over-confident, float32 as a network would), so the ideal temperature is
T0 and the best reachable NLL is the NLL of ``softmax(z)``.

Side by side, in one process, each fitted ``--repeat`` times (median wall time, after one untimed warm-up fit
on small data so that imports are not timed):

- caltrain ``ts`` (exact bracketed Newton on 1/T, float64), ``ats``, ``vector``, ``dirichlet`` (ODIR, at the
  default reg_lambda 0.01 and at 1000);
- "plain LBFGS on T": the code most users copy (Guo et al.'s repository): ``T = nn.Parameter(1.5)``,
  ``torch.optim.LBFGS([T], lr=0.01, max_iter=50)``, one ``step`` on ``cross_entropy(logits / T, y)``, float32;
- netcal 1.3 ``TemperatureScaling()`` (method "mle", on softmax probabilities as netcal expects, no
  tensorboard logging).

Printed: fit seconds, the temperature where there is one, validation and test NLL, and the ratios of the
baselines' times to caltrain ``ts``'s.

Run: ``PYTHONPATH=src python bench/posthoc.py [--n 10000] [--classes 100] [--repeat 3] [--threads 1]``;
``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from typing import Any, Callable

import numpy as np
import torch

from caltrain import posthoc


def make_split(n: int, k: int, *, t0: float, scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    y = torch.multinomial(torch.softmax(z, dim=1), 1, generator=g)[:, 0]
    ideal = float(torch.nn.functional.cross_entropy(z, y))
    return (t0 * z).float(), y, ideal


def nll_of(probs: torch.Tensor, y: torch.Tensor) -> float:
    p = probs.to(torch.float64).gather(1, y[:, None])[:, 0].clamp_min(1e-300)
    return float(-p.log().mean())


def plain_lbfgs_t(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature-scaling code most users copy: LBFGS on T in float32, lr 0.01, 50 iterations."""
    t = torch.nn.Parameter(torch.ones(1) * 1.5)
    opt = torch.optim.LBFGS([t], lr=0.01, max_iter=50)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / t, labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(t.detach())


def netcal_ts(probs: np.ndarray, labels: np.ndarray):
    from netcal.scaling import TemperatureScaling

    model = TemperatureScaling()
    model.fit(probs, labels, tensorboard=False)
    return model


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--scale", type=float, default=2.0, help="spread of the calibrated logits")
    parser.add_argument("--t0", type=float, default=2.5, help="over-confidence factor of the model")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-netcal", action="store_true")
    parser.add_argument("--dirichlet-lambdas", default="0.01,1000",
                        help="comma-separated reg_lambda values of the Dirichlet rows (default 0.01 (ours), 1000)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    val_z, val_y, ideal_val = make_split(args.n, args.classes, t0=args.t0, scale=args.scale, seed=0)
    test_z, test_y, ideal_test = make_split(args.n, args.classes, t0=args.t0, scale=args.scale, seed=1)
    val_p, test_p = torch.softmax(val_z.double(), 1), torch.softmax(test_z.double(), 1)
    rows: list[dict[str, Any]] = []

    def add(name: str, seconds: float, temperature, val_probs, test_probs) -> None:
        rows.append({
            "method": name,
            "seconds": seconds,
            "temperature": temperature,
            "val_nll": nll_of(val_probs, val_y),
            "test_nll": nll_of(test_probs, test_y),
        })

    small_z, small_y = val_z[:500], val_y[:500]
    configs = [("ts", {}), ("ats", {}), ("vector", {})]
    configs += [("dirichlet", {"reg_lambda": float(v)}) for v in args.dirichlet_lambdas.split(",") if v]
    for name, options in configs:
        posthoc.create(name, **options).fit(small_z, small_y)  # warm-up: allocator, lazy imports
        seconds, cal = timed(lambda: posthoc.create(name, **options).fit(val_z, val_y), args.repeat)
        t = getattr(cal, "temperature_", None)
        label = f"caltrain {name}" + "".join(f" {k}={v:g}" for k, v in options.items())
        add(label, seconds, t, cal.predict_proba(val_z), cal.predict_proba(test_z))

    plain_lbfgs_t(small_z, small_y)
    seconds, t = timed(lambda: plain_lbfgs_t(val_z, val_y), args.repeat)
    add("plain LBFGS on T (float32)", seconds, t, torch.softmax(val_z.double() / t, 1),
        torch.softmax(test_z.double() / t, 1))

    if not args.skip_netcal:
        netcal_ts(val_p[:500].numpy(), small_y.numpy())
        seconds, model = timed(lambda: netcal_ts(val_p.numpy(), val_y.numpy()), args.repeat)
        t = 1.0 / float(np.asarray(model.temperature).reshape(-1)[0])
        add("netcal TemperatureScaling", seconds, t, torch.as_tensor(model.transform(val_p.numpy())),
            torch.as_tensor(model.transform(test_p.numpy())))

    uncal = {"val_nll": nll_of(val_p, val_y), "test_nll": nll_of(test_p, test_y)}
    ts_seconds = rows[0]["seconds"]
    print(f"{args.n} x {args.classes} logits (T0 = {args.t0}), {args.threads} torch thread(s), "
          f"median of {args.repeat}")
    print(f"uncalibrated NLL val {uncal['val_nll']:.4f} test {uncal['test_nll']:.4f}; "
          f"ideal (softmax(z)) val {ideal_val:.4f} test {ideal_test:.4f}")
    print(f"{'method':<36} {'fit s':>9} {'T':>8} {'val NLL':>9} {'test NLL':>9} {'time / caltrain ts':>19}")
    for r in rows:
        t = "-" if r["temperature"] is None else f"{r['temperature']:.4f}"
        print(f"{r['method']:<36} {r['seconds']:>9.4f} {t:>8} {r['val_nll']:>9.5f} {r['test_nll']:>9.5f} "
              f"{r['seconds'] / ts_seconds:>18.1f}x")
    result = {"n": args.n, "classes": args.classes, "t0": args.t0, "threads": args.threads,
              "uncalibrated": uncal, "ideal": {"val_nll": ideal_val, "test_nll": ideal_test}, "rows": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
