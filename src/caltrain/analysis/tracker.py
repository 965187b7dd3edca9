"""CurvatureTracker: calibration, margins and curvature of a model, measured every k training steps.

The trainer (``curvature.every_steps`` in its configuration) calls ``tracker(model, inputs, labels)`` on a
fixed set of training samples and logs the returned dict; the report draws ECE and sharpness against
steps. This reproduces the measurements of CalMO's coupling study (Morosini et al., arXiv 2604.20614,
docs/methods.md#calmo-and-the-calibration-curvature-link): ECE, Gauss-Newton sharpness, batch sharpness,
optionally the Hessian sharpness, and the
margin tail Q, all on the same samples.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from caltrain.analysis.batch_sharpness import batch_sharpness
from caltrain.analysis.eigensolvers import EIGENSOLVERS
from caltrain.analysis.evaluation_set import evaluation_set
from caltrain.analysis.functional_model import FunctionalModel, evaluation_mode
from caltrain.analysis.gauss_newton import gauss_newton_sharpness
from caltrain.analysis.hessian import hessian_sharpness
from caltrain.analysis.margins import margin_tail
from caltrain.metrics import expected_calibration_error
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["CurvatureTracker"]


class CurvatureTracker:
    """Measure ECE, margin tail and curvature of a classifier on a fixed sample set, cheaply and repeatably.

    ``tracker(model, inputs, labels)`` returns a dict of Python floats:

    - ``gn_sharpness``: lambda_max of the cross-entropy Gauss-Newton matrix
      (:func:`~caltrain.analysis.gauss_newton_sharpness`), and ``gn_iterations``, the products it took;
    - ``batch_sharpness``: E_B[g_B^T H_B g_B / ||g_B||^2] over ``num_batches`` batches of ``batch_size``
      (:func:`~caltrain.analysis.batch_sharpness`);
    - ``hessian_sharpness`` (only with ``hessian=True``): lambda_max of the loss Hessian
      (:func:`~caltrain.analysis.hessian_sharpness`);
    - ``margin_tail`` and ``log_margin_tail``: Q = mean exp(-m) and log Q (:func:`~caltrain.analysis.margin_tail`);
    - ``ece``: top-label ECE with ``n_bins`` equal-width bins.

    All on the same ``subset`` samples (drawn once from ``seed``; the trainer passes the first ``subset``
    training samples), the model in eval mode. The call leaves the model's mode, parameters, buffers and
    ``.grad`` as they were and never touches the global RNG, so tracking does not change the run.

    Warm start: each eigenvalue solve starts from the previous call's eigenvector (``warm_start=True``);
    along a trajectory the top eigenvector moves slowly, so after the first call a few products usually
    reach ``tol``. The vectors are the tracker's only state (``state_dict``/``load_state_dict``, so a
    resumed run gives the same estimates as an uninterrupted one).

    Cost of one call, with F = one forward pass over ``subset`` samples: GN sharpness one F with graph plus
    4-5 F per product (at most ``iters``; 1-4 when warm-started); batch sharpness about 4 SGD steps of
    ``batch_size`` per batch; Hessian sharpness (off by default: it roughly doubles the call) 3-4 F per
    product; margin tail and ECE one F. Measured on CalMO's 2 x 200 MLP with the defaults: 0.09-0.18 s, the
    time of 34-53 SGD steps of batch 128, about 60% of it batch sharpness (BENCHMARKS.md, "analysis").
    Tracking every ``k`` steps costs about that divided by ``k``.

    Args:
        subset: the number of samples measured (default 256).
        iters: the maximum number of operator products per eigenvalue (default 20).
        tol: relative residual at which an eigenvalue solve stops (default 1e-3).
        method: eigensolver, "lanczos" (default) or "power".
        batch_size: the mini-batch size of batch sharpness; set it to the training batch size (default 128).
        num_batches: mini-batches averaged for batch sharpness (default 4).
        hessian: also estimate the Hessian's top eigenvalue (default False: the costliest quantity).
        n_bins: ECE bins (default 15, CalMO's).
        seed: seeds the subset, the random start vectors and the batch draws (default 0).
        chunk_size: evaluate curvature products in chunks of this many samples to bound memory (default
            None: the whole subset at once, graph built once per call).
        warm_start: start each solve from the previous eigenvector (default True).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
        >>> tracker = CurvatureTracker(subset=64, batch_size=16)
        >>> record = tracker(net, torch.randn(100, 4), torch.randint(0, 3, (100,)))
        >>> sorted(record)
        ['batch_sharpness', 'ece', 'gn_iterations', 'gn_sharpness', 'log_margin_tail', 'margin_tail']
    """

    def __init__(
        self,
        *,
        subset: int = 256,
        iters: int = 20,
        tol: float = 1e-3,
        method: str = "lanczos",
        batch_size: int = 128,
        num_batches: int = 4,
        hessian: bool = False,
        n_bins: int = 15,
        seed: int = 0,
        chunk_size: int | None = None,
        warm_start: bool = True,
    ) -> None:
        self.subset = check_positive_int(subset, "subset")
        self.iters = check_positive_int(iters, "iters")
        self.tol = check_number(tol, "tol", low=0.0)
        EIGENSOLVERS.get(method)
        self.method = method
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_batches = check_positive_int(num_batches, "num_batches")
        self.hessian = bool(hessian)
        self.n_bins = check_positive_int(n_bins, "n_bins")
        self.seed = int(seed)
        self.chunk_size = None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
        self.warm_start = bool(warm_start)
        self._vectors: dict[str, torch.Tensor] = {}

    def __call__(self, model: nn.Module, inputs, labels) -> dict[str, float]:
        """Measure ``model`` on (the tracker's subset of) ``inputs`` [N, ...] and ``labels`` [N]."""
        fmodel = FunctionalModel(model)
        x, y = evaluation_set(inputs, labels, subset=self.subset, seed=self.seed, device=fmodel.device)
        if y is None:
            raise ValueError("labels: the tracker needs the class labels [N], got None")
        with evaluation_mode(model), torch.no_grad():
            logits = model(x)
        tail = margin_tail(logits, y)  # also checks the labels against the number of outputs
        solver = dict(method=self.method, iters=self.iters, tol=self.tol, seed=self.seed, chunk_size=self.chunk_size)
        gn = gauss_newton_sharpness(model, x, init=self._start("gn", fmodel.dim), **solver)
        self._remember("gn", gn.vector)
        batches = batch_sharpness(
            model, x, y, batch_size=self.batch_size, num_batches=self.num_batches, seed=self.seed
        )
        record = {
            "gn_sharpness": gn.value,
            "gn_iterations": gn.iterations,
            "batch_sharpness": batches.value,
            "margin_tail": float(tail.q),
            "log_margin_tail": float(tail.log_q),
            "ece": float(expected_calibration_error(logits.to(torch.float64), y, self.n_bins, from_logits=True)),
        }
        if self.hessian:
            top = hessian_sharpness(model, x, y, init=self._start("hessian", fmodel.dim), **solver)
            self._remember("hessian", top.vector)
            record["hessian_sharpness"] = top.value
        return record

    def _start(self, key: str, dim: int) -> torch.Tensor | None:
        vector = self._vectors.get(key)
        return vector if vector is not None and vector.numel() == dim else None

    def _remember(self, key: str, vector: torch.Tensor) -> None:
        if self.warm_start:
            self._vectors[key] = vector.detach()

    def state_dict(self) -> dict[str, Any]:
        """The warm-start eigenvectors (CPU tensors), for a checkpoint."""
        return {key: vector.cpu() for key, vector in self._vectors.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the warm-start eigenvectors saved by :meth:`state_dict`."""
        self._vectors = {str(key): torch.as_tensor(vector) for key, vector in state.items()}

    def __repr__(self) -> str:
        return (
            f"CurvatureTracker(subset={self.subset}, iters={self.iters}, tol={self.tol:g}, method={self.method!r}, "
            f"batch_size={self.batch_size}, num_batches={self.num_batches}, hessian={self.hessian}, "
            f"n_bins={self.n_bins}, seed={self.seed})"
        )
