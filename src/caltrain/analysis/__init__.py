"""Analysis tools: margin tails and curvature (Gauss-Newton sharpness) along training.

The quantities of CalMO's calibration-curvature link ("Too Sharp, Too Sure", Morosini et al.,
arXiv 2604.20614; docs/methods.md#calmo-and-the-calibration-curvature-link), as pure functions of
(model, inputs, labels) or of logits:

- :func:`margins`, :func:`margin_tail` (Q = mean exp(-m), in log space), :func:`robust_margins` and
  :func:`robust_margin_tail` (worst margin within an L-inf ball, by PGD);
- :func:`gauss_newton_sharpness` (lambda_max of E[J^T (diag p - p p^T) J]), :func:`batch_sharpness`
  (E_B[g_B^T H_B g_B / ||g_B||^2]) and :func:`hessian_sharpness` (lambda_max of the loss Hessian), with
  the matrix-free operators :func:`gauss_newton_operator` and :func:`hessian_operator` and the
  eigensolvers :func:`lanczos`, :func:`power_iteration`, :func:`top_eigenvalue`;
- :class:`CurvatureTracker`, which the trainer calls every k steps.

``python -m caltrain.analysis.coupling`` reproduces CalMO's coupling study in miniature (docs/analysis.md).
"""

from caltrain.analysis.batch_sharpness import BatchSharpnessEstimate, batch_sharpness
from caltrain.analysis.eigensolvers import EIGENSOLVERS, EigenEstimate, lanczos, power_iteration, top_eigenvalue
from caltrain.analysis.evaluation_set import evaluation_subset
from caltrain.analysis.gauss_newton import gauss_newton_operator, gauss_newton_sharpness, logit_hessian_product
from caltrain.analysis.hessian import hessian_operator, hessian_sharpness
from caltrain.analysis.margins import MarginTail, margin_tail, margin_tail_from_margins, margins
from caltrain.analysis.robust_margins import robust_margin_tail, robust_margins
from caltrain.analysis.tracker import CurvatureTracker

__all__ = [
    "EIGENSOLVERS",
    "BatchSharpnessEstimate",
    "CurvatureTracker",
    "EigenEstimate",
    "MarginTail",
    "batch_sharpness",
    "evaluation_subset",
    "gauss_newton_operator",
    "gauss_newton_sharpness",
    "hessian_operator",
    "hessian_sharpness",
    "lanczos",
    "logit_hessian_product",
    "margin_tail",
    "margin_tail_from_margins",
    "margins",
    "power_iteration",
    "robust_margin_tail",
    "robust_margins",
    "top_eigenvalue",
]
