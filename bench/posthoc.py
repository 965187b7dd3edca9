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

Real network outputs (issue 17): ``--records PATH`` (the folder or file of ``netcal_cifar_records.npz``,
tests/data/real_outputs/README.md) runs instead, for each of netcal's five CIFAR records and ``--seeds`` seeded
half/half splits (fit on one half, score on the other): the held-out NLL and ECE (15 equal-width bins) before
and after every calibrator with its defaults and with the previous defaults (matrix ``reg_lambda=0``,
dirichlet ``reg_lambda=0.01``, vector ``reg_mu=0``, ets ``loss="mse"``, histogram / isotonic
``smoothing=0``, all with the old ``tol=1e-7``), the fit seconds, and the fit time of the cross-validated
default against a fit with the chosen regularisation given (what the CV costs).
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
                        help="comma-separated given reg_lambda values of extra Dirichlet rows (default 0.01 (the "
                             "previous default), 1000); the default row cross-validates")
    parser.add_argument("--records", default=None, help="netcal_cifar_records.npz or its folder: real outputs")
    parser.add_argument("--seeds", type=int, default=3, help="with --records: seeded half/half splits (default 3)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    if args.records:
        return real_outputs(args)

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
    configs = [("ts", {}), ("ats", {}), ("vector", {}), ("dirichlet", {})]
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


#: Every multi-class calibrator, with its defaults (name, options) and the previous defaults (issue 17).
REAL_CONFIGS = [
    ("ts", {}), ("ts-grid-ece", {}), ("ats", {}), ("ets", {}), ("vector", {}), ("matrix", {}), ("dirichlet", {}),
    ("histogram", {}), ("isotonic", {}),
]
OLD_CONFIGS = [
    ("ets", {"loss": "mse"}), ("vector", {"reg_mu": 0.0, "tol": 1e-7}), ("matrix", {"reg_lambda": 0.0, "tol": 1e-7}),
    ("dirichlet", {"reg_lambda": 0.01, "tol": 1e-7}), ("histogram", {"smoothing": 0.0}),
    ("isotonic", {"smoothing": 0.0}),
]


def _records_file(path: str):
    from pathlib import Path

    p = Path(path)
    return p / "netcal_cifar_records.npz" if p.is_dir() else p


def real_outputs(args) -> dict:
    """Held-out NLL / ECE before and after each calibrator on netcal's CIFAR records (module docstring)."""
    from caltrain import metrics

    with np.load(_records_file(args.records), allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    names = sorted({key.rsplit(".", 1)[0] for key in arrays}, key=lambda n: (not n.endswith("cifar-100"), n))
    rows: list[dict[str, Any]] = []
    timing: list[dict[str, Any]] = []
    for record in names:
        z_all = torch.from_numpy(arrays[f"{record}.logits"].astype(np.float64))
        y_all = torch.from_numpy(arrays[f"{record}.labels"].astype(np.int64))
        for seed in range(args.seeds):
            perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(seed))
            fit, test = perm[: len(perm) // 2], perm[len(perm) // 2:]
            before = metrics.summarize(torch.softmax(z_all[test], 1), y_all[test], n_bins=15)
            for kind, configs in (("default", REAL_CONFIGS), ("previous", OLD_CONFIGS)):
                for name, options in configs:
                    start = time.perf_counter()
                    cal = posthoc.create(name, **options).fit(z_all[fit], y_all[fit])
                    seconds = time.perf_counter() - start
                    after = metrics.summarize(cal.predict_proba(z_all[test]), y_all[test], n_bins=15)
                    rows.append({"record": record, "seed": seed, "kind": kind, "method": name, "options": options,
                                 "seconds": seconds, "nll_before": before["nll"], "nll_after": after["nll"],
                                 "ece_before": before["ece"], "ece_after": after["ece"]})
                    if kind == "default" and name == "dirichlet" and seed == 0:
                        given = {"reg_lambda": cal.reg_lambda_, "reg_mu": cal.reg_mu_, "reg_nu": cal.reg_nu_}
                        fixed = [time.perf_counter()]
                        posthoc.create("dirichlet", **given).fit(z_all[fit], y_all[fit])
                        fixed.append(time.perf_counter())
                        posthoc.create("ts").fit(z_all[fit], y_all[fit])
                        fixed.append(time.perf_counter())
                        timing.append({"record": record, "cv_seconds": seconds, "given_seconds": fixed[1] - fixed[0],
                                       "ts_seconds": fixed[2] - fixed[1], "path": cal.cv_path_, **given})
    print(f"netcal CIFAR records, {args.seeds} seeded half/half split(s), {args.threads} torch thread(s)")
    print("| record | calibrator | defaults | held-out NLL before -> after | ECE before -> after | fit s | "
          "splits raising NLL / ECE |")
    print("|---|---|---|---|---|---|---|")
    for record in names:
        for kind, configs in (("default", REAL_CONFIGS), ("previous", OLD_CONFIGS)):
            for name, options in configs:
                rs = [r for r in rows if r["record"] == record and r["kind"] == kind and r["method"] == name]
                mean = {k: statistics.fmean(r[k] for r in rs) for k in ("nll_before", "nll_after", "ece_before",
                                                                         "ece_after", "seconds")}
                worse_nll = sum(r["nll_after"] > r["nll_before"] for r in rs)
                worse_ece = sum(r["ece_after"] > r["ece_before"] for r in rs)
                shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items())
                label = "new" if kind == "default" else f"previous {shown}"
                print(f"| {record} | {name} | {label} | {mean['nll_before']:.4f} -> {mean['nll_after']:.4g} | "
                      f"{mean['ece_before']:.4f} -> {mean['ece_after']:.4f} | {mean['seconds']:.2f} | "
                      f"{worse_nll} / {worse_ece} of {len(rs)} |")
    print("\nfit time of the cross-validated dirichlet default vs the same fit with its chosen values given (seed 0)")
    print("| record | CV s | given s | CV / given | ts s | chosen lambda, mu, nu |")
    print("|---|---|---|---|---|---|")
    for t in timing:
        print(f"| {t['record']} | {t['cv_seconds']:.2f} | {t['given_seconds']:.2f} | "
              f"{t['cv_seconds'] / t['given_seconds']:.1f}x | {t['ts_seconds']:.3f} | "
              f"{t['reg_lambda']:.4g}, {t['reg_mu']:.4g}, {t['reg_nu']:.4g} |")
    result = {"seeds": args.seeds, "threads": args.threads, "rows": rows,
              "timing": [{k: v for k, v in t.items() if k != "path"} for t in timing]}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
