"""Benchmark: Gauss-Newton sharpness by matrix-free products vs the explicit Jacobian, side by side.

    python bench/curvature.py                  # the figures of BENCHMARKS.md ("analysis")
    python bench/curvature.py --quick          # a few seconds, to check that it runs

1. lambda_max(G) of a tanh MLP (10 classes) on n samples, by
   - caltrain: ``gauss_newton_sharpness`` (Lanczos on G v = J^T H_z J v via torch.func jvp + vjp, tol 1e-6);
   - dense, what a user would write: J [n, K, P] by ``torch.autograd.functional.jacobian`` (and by the
     vectorised ``torch.func.jacrev``), G = (1/n) sum_i J_i^T (diag p_i - p_i p_i^T) J_i, then
     ``numpy.linalg.eigvalsh``.
   Reports seconds per estimate, the ratio, and the relative difference of the eigenvalues.
2. Products needed by Lanczos and by power iteration to reach a tolerance, on CalMO's 2 x 200 MLP.
3. The cost of one ``CurvatureTracker`` call (cold and warm-started) against one SGD step of batch 128.

Timings are the best of ``--repeat`` runs, in one process, with ``--threads`` torch threads (default 1:
on a shared machine more threads mostly measure contention).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from caltrain.analysis import CurvatureTracker, gauss_newton_sharpness  # noqa: E402
from caltrain.data.synthetic import synthetic  # noqa: E402
from caltrain.models.mlp import MLP  # noqa: E402


def coupling_problem(n: int) -> tuple[torch.Tensor, torch.Tensor, nn.Module]:
    """n training samples of the embedded Gaussian mixture and CalMO's 2 x 200 tanh MLP, seeded."""
    train = synthetic(seed=0, train_size=n, val_size=1, test_size=1).train
    torch.manual_seed(0)
    return train.x, train.y, MLP(32, 10, hidden=(200, 200), activation="tanh")


def best_time(fn, repeat: int) -> tuple[float, object]:
    result, times = None, []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def dense_gn_top_eigenvalue(model: nn.Module, x: torch.Tensor, jacobian: str) -> float:
    """The user's dense route: the full Jacobian, the explicit G, eigvalsh."""
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in model.parameters())

    def logits(*ps):
        return torch.func.functional_call(model, dict(zip(names, ps)), (x,))

    if jacobian == "autograd":
        parts = torch.autograd.functional.jacobian(logits, params)
    else:
        parts = torch.func.jacrev(logits, argnums=tuple(range(len(params))))(*params)
    n, k = x.shape[0], parts[0].shape[1]
    jac = torch.cat([j.reshape(n, k, -1) for j in parts], dim=2)
    with torch.no_grad():
        p = logits(*params).softmax(dim=1)
    hj = p[:, :, None] * (jac - torch.einsum("nk,nkp->np", p, jac)[:, None, :])  # H_i J_i without K x K matrices
    g = torch.einsum("nkp,nkq->pq", jac, hj) / n
    return float(np.linalg.eigvalsh(g.double().numpy())[-1])


def bench_dense_vs_matrix_free(widths, n: int, repeat: int) -> list[dict]:
    rows = []
    x = torch.randn(n, 32)
    for width in widths:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(32, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                              nn.Linear(width, 10)).eval()
        dim = sum(p.numel() for p in model.parameters())
        gauss_newton_sharpness(model, x[:2], iters=2)  # one-time torch.func set-up, not part of either timing
        t_free, est = best_time(lambda: gauss_newton_sharpness(model, x, iters=200, tol=1e-6), repeat)
        t_jacrev, top = best_time(lambda: dense_gn_top_eigenvalue(model, x, "jacrev"), repeat)
        t_autograd, top_autograd = best_time(lambda: dense_gn_top_eigenvalue(model, x, "autograd"), 1)
        rows.append(dict(width=width, params=dim, n=n, matrix_free_s=t_free, products=est.iterations,
                         dense_jacrev_s=t_jacrev, dense_autograd_s=t_autograd,
                         speedup_vs_jacrev=t_jacrev / t_free, speedup_vs_autograd=t_autograd / t_free,
                         lambda_matrix_free=est.value, lambda_dense=top,
                         rel_diff=abs(est.value - top) / top, rel_diff_autograd=abs(top_autograd - top) / top))
    return rows


def bench_solvers(n: int, train_steps: int, tols) -> list[dict]:
    x, y, model = coupling_problem(n)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rows = []
    for stage, steps in (("init", 0), (f"after {train_steps} SGD steps", train_steps)):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        for tol in tols:
            row = dict(stage=stage, tol=tol, params=sum(p.numel() for p in model.parameters()))
            for method in ("lanczos", "power"):
                start = time.perf_counter()
                est = gauss_newton_sharpness(model, x, method=method, iters=500, tol=tol)
                row[method] = dict(products=est.iterations, value=est.value, converged=est.converged,
                                   seconds=time.perf_counter() - start)
            rows.append(row)
    return rows


def bench_tracker(subset: int, repeat: int) -> dict:
    x, y, model = coupling_problem(max(subset, 1000))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(0)

    def sgd_step():
        index = torch.randint(0, x.shape[0], (128,), generator=generator)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[index]), y[index]).backward()
        opt.step()

    for _ in range(200):
        sgd_step()
    tracker = CurvatureTracker(subset=subset)
    t_cold, record = best_time(lambda: CurvatureTracker(subset=subset)(model, x, y), repeat)
    tracker(model, x, y)
    for _ in range(10):
        sgd_step()
    start = time.perf_counter()
    warm = tracker(model, x, y)
    t_warm = time.perf_counter() - start
    t_step, _ = best_time(lambda: [sgd_step() for _ in range(20)], repeat)
    t_step /= 20
    return dict(subset=subset, cold_s=t_cold, cold_products=record["gn_iterations"], warm_s=t_warm,
                warm_products=warm["gn_iterations"], sgd_step_s=t_step, cold_in_steps=t_cold / t_step,
                warm_in_steps=t_warm / t_step)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    widths, n, repeat = ((8,), 64, 1) if args.quick else ((16, 32), 256, args.repeat)
    results = {"threads": args.threads, "torch": torch.__version__}

    results["dense_vs_matrix_free"] = rows = bench_dense_vs_matrix_free(widths, n, repeat)
    print(f"## GN sharpness, one estimate (tol 1e-6), n = {n} samples, 10 classes, {args.threads} thread(s)\n")
    print("| MLP 32-w-w-10 | P | matrix-free s (products) | dense jacrev s | dense autograd.jacobian s "
          "| speed-up vs jacrev | vs autograd | rel. diff of lambda_max |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| w = {r['width']} | {r['params']} | {r['matrix_free_s']:.3f} ({r['products']}) | "
              f"{r['dense_jacrev_s']:.3f} | {r['dense_autograd_s']:.3f} | {r['speedup_vs_jacrev']:.1f}x | "
              f"{r['speedup_vs_autograd']:.1f}x | {r['rel_diff']:.1e} |")

    results["solvers"] = rows = bench_solvers(200 if args.quick else 1000, 20 if args.quick else 300,
                                              (1e-3,) if args.quick else (1e-3, 1e-6))
    print(f"\n## Products to convergence, CalMO's 2 x 200 tanh MLP (P = {rows[0]['params']})\n")
    print("| model | tol | Lanczos products (lambda) | power products (lambda) |")
    print("|---|---|---|---|")
    for r in rows:
        lz, pw = r["lanczos"], r["power"]
        print(f"| {r['stage']} | {r['tol']:g} | {lz['products']} ({lz['value']:.5g}) | "
              f"{pw['products']}{'' if pw['converged'] else ' (not converged)'} ({pw['value']:.5g}) |")

    results["tracker"] = t = bench_tracker(64 if args.quick else 256, repeat)
    print(f"\n## One CurvatureTracker call (subset {t['subset']}, iters 20, 4 batches of 128) vs one SGD step\n")
    print(f"cold: {t['cold_s'] * 1e3:.1f} ms ({t['cold_products']} products) = {t['cold_in_steps']:.1f} SGD steps; "
          f"warm-started: {t['warm_s'] * 1e3:.1f} ms ({t['warm_products']} products) = {t['warm_in_steps']:.1f} "
          f"SGD steps; SGD step (batch 128): {t['sgd_step_s'] * 1e3:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
