"""``ets``: ensemble temperature scaling (Zhang, Kailkhura, Han 2020, "Mix-n-Match", arXiv 2003.07329, Sec. 3.1).

A convex mixture of the temperature-scaled, the uncalibrated and the uniform prediction:

    q = w_1 softmax(z / T) + w_2 softmax(z) + w_3 / K,      w on the simplex (w_j >= 0, sum w_j = 1).

Fitting, in two stages as the authors' code: T first, then w with T fixed. ``loss="mse"`` (the authors'
public code) minimises the mean squared error over all N x K entries,
``(1/(N K)) sum_ik (q_ik - 1[y_i = k])^2``: T by bounded 1-D search over ``[t_min, t_max]`` (their bounds
0.05..5, ``scipy.optimize.minimize_scalar``), then w exactly: the MSE is a quadratic ``w^T G w - 2 h^T w + c``
in w, minimised on the simplex by solving the equality-constrained problem on every face (7 supports) and
keeping the best feasible one. ``loss="nll"``: T as ``ts`` (exact 1-D NLL fit), then w maximising the
likelihood ``(1/N) sum_i log(A_i w)``, ``A_i = (softmax(z_i/T)_y, softmax(z_i)_y, 1/K)``, by the EM fixed
point ``w_j <- w_j * mean_i(A_ij / A_i w)`` for mixture proportions (monotone, converges to the global optimum
of this concave problem).

Default ``loss="nll"`` (Reading, since issue 17: the authors' ``"mse"`` raised the held-out NLL of real
CIFAR-100 outputs, a WRN-16-4 fitted on 5,000 samples: 0.958 -> 0.971, where ``"nll"`` lowers it to 0.951;
the likelihood fit contains the identity, w = (0, 1, 0), so on the fitting set it can only lower the NLL).

The argmax is preserved (each component ranks classes as z does). Not a logit map: use ``predict_proba``.

Example:
    >>> import numpy as np
    >>> simplex_quadratic_minimum(np.eye(3), np.array([1.0, 0.0, 0.0])).tolist()  # the vertex closest to h
    [1.0, 0.0, 0.0]
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from caltrain.posthoc.base import Calibrator, Field, positive_temperature
from caltrain.posthoc.registry import register
from caltrain.posthoc.temperature import fit_temperature
from caltrain.utils.checks import check_choice, check_number

__all__ = ["EnsembleTemperatureScaling", "simplex_quadratic_minimum"]


def simplex_quadratic_minimum(gram: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """``argmin_w w^T G w - 2 h^T w`` over the probability simplex (small dimension d, G symmetric PSD).

    Solves the KKT system of ``min w_S^T G_SS w_S - 2 h_S^T w_S s.t. sum w_S = 1`` on each of the 2^d - 1
    supports S (least squares where singular) and returns the feasible (w >= 0) solution of least objective.
    """
    d = gram.shape[0]
    best, best_value = None, np.inf
    for size in range(1, d + 1):
        for support in itertools.combinations(range(d), size):
            s = list(support)
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = 2 * gram[np.ix_(s, s)]
            kkt[:size, size] = 1.0
            kkt[size, :size] = 1.0
            rhs = np.concatenate([2 * linear[s], [1.0]])
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            if np.any(sol < -1e-12) or abs(sol.sum() - 1) > 1e-9:
                continue
            w = np.zeros(d)
            w[s] = np.clip(sol, 0, None)
            w /= w.sum()
            value = w @ gram @ w - 2 * linear @ w
            if value < best_value - 1e-15:
                best, best_value = w, value
    assert best is not None  # every vertex is feasible
    return best


def _mse_temperature(z: torch.Tensor, onehot: torch.Tensor, t_min: float, t_max: float) -> float:
    from scipy.optimize import minimize_scalar

    def mse(t: float) -> float:
        return float((torch.softmax(z / t, dim=1) - onehot).square().mean())

    res = minimize_scalar(mse, bounds=(t_min, t_max), method="bounded", options={"xatol": 1e-8})
    return float(res.x)


@register("ets")
class EnsembleTemperatureScaling(Calibrator):
    """Ensemble temperature scaling: ``q = w1 softmax(z/T) + w2 softmax(z) + w3/K`` (Zhang et al. 2020).

    Mix-n-Match, arXiv 2003.07329, Sec. 3.1; the math and the fitting in the module docstring.

    Args:
        loss: ``"nll"`` (default since issue 17) or ``"mse"`` (the authors' code): the fitting loss of both
            stages (module docstring).
        t_min, t_max: the bracket on T (default 0.05..5, the authors' bounds).
        abstention: see :mod:`caltrain.posthoc.base`.

    Fitted attributes: ``temperature_``, ``weights_`` ``[3]`` (temperature-scaled, uncalibrated, uniform).
    """

    preserves_argmax = True
    is_logit_map = False
    _fitted = ("temperature_", "weights_")
    _fields = {
        "temperature_": positive_temperature(lambda c: c.t_min, lambda c: c.t_max),
        "weights_": Field("array", shape=lambda c, k: (3,), low=0.0, high=1.0, simplex=True),
    }

    def __init__(
        self,
        *,
        loss: str = "nll",
        t_min: float = 0.05,
        t_max: float = 5.0,
        abstention: str | None = None,
    ) -> None:
        super().__init__(abstention=abstention)
        check_choice(loss, "loss", ("mse", "nll"))
        self.loss = loss
        check_number(t_min, "t_min", low=0, low_inclusive=False)
        self.t_min = t_min
        check_number(t_max, "t_max", low=self.t_min, low_inclusive=False)
        self.t_max = t_max

    def _components(self, z: torch.Tensor, temperature: float) -> torch.Tensor:
        """``[3, N, K]``: softmax(z/T), softmax(z), uniform."""
        p0 = torch.softmax(z / temperature, dim=1)
        p1 = torch.softmax(z, dim=1)
        return torch.stack([p0, p1, torch.full_like(p0, 1.0 / z.shape[1])])

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        n, k = z.shape
        if self.loss == "mse":
            onehot = torch.nn.functional.one_hot(y, k).to(torch.float64)
            t = _mse_temperature(z, onehot, self.t_min, self.t_max)
            comps = self._components(z, t).reshape(3, -1)
            gram = (comps @ comps.T / comps.shape[1]).cpu().numpy()
            lin = (comps @ onehot.reshape(-1) / comps.shape[1]).cpu().numpy()
            w = torch.from_numpy(simplex_quadratic_minimum(gram, lin))
        else:
            t = fit_temperature(z, y, t_min=self.t_min, t_max=self.t_max)[0]
            comps = self._components(z, t)
            a = comps.gather(2, y.expand(3, n)[:, :, None])[:, :, 0].T  # [N, 3]: each component's p_y
            w = torch.full((3,), 1.0 / 3, dtype=torch.float64, device=z.device)
            for it in range(5000):
                new = w * (a / (a @ w)[:, None]).mean(dim=0)
                new = new / new.sum()
                if it % 50 == 49 and float((new - w).abs().max()) < 1e-12:
                    w = new
                    break
                w = new
            w = w.cpu()
        self.temperature_ = float(t)
        self.weights_ = w.to(torch.float64)

    def _predict_proba(self, z: torch.Tensor) -> torch.Tensor:
        comps = self._components(z, self.temperature_)
        return torch.einsum("j,jnk->nk", self.weights_.to(z.device), comps)

    def _params(self) -> dict[str, Any]:
        w = self.weights_.tolist()
        return {"temperature": self.temperature_, "weight_ts": w[0], "weight_identity": w[1], "weight_uniform": w[2]}
