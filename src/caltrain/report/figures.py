"""Figure plumbing shared by the plot objects: matplotlib is imported here, only when something is drawn.

Figures are created as :class:`matplotlib.figure.Figure` objects bound to the Agg canvas (no global pyplot
state, no display needed), unless the caller already uses pyplot, in which case ``plt.figure`` is used so the
figure shows up in notebooks. PNG bytes come from :func:`figure_png`.
"""

from __future__ import annotations

import io
import sys
from typing import Any

import numpy as np
import torch

from caltrain.metrics.ece import top_label as _top_label
from caltrain.metrics.validation import prepare
from caltrain.utils.checks import as_tensor, check_ndim, check_nonempty, check_same_length

__all__ = ["figure_png", "new_figure", "top_label", "validated_probs"]

#: Colours used for the objectives, in order (matplotlib's tab10).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def colour(i: int) -> str:
    """The ``i``-th colour of :data:`PALETTE` (cycled)."""
    return PALETTE[i % len(PALETTE)]


def line_style(i: int) -> str:
    """Solid for the first 10 series, then dashed, dotted, dash-dot (so colour + style stay unique to 40)."""
    return ("-", "--", ":", "-.")[(i // len(PALETTE)) % 4]


def marker(i: int) -> str:
    """A marker per block of 10 series (see :func:`line_style`)."""
    return ("o", "s", "^", "D")[(i // len(PALETTE)) % 4]


def outside_legend(ax, n_entries: int, *, threshold: int = 4) -> None:
    """A legend inside ``ax`` for a few entries, else to the right of it (constrained layout makes room)."""
    if n_entries <= threshold:
        ax.legend(fontsize=7)
    else:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def new_figure(figsize: tuple[float, float] = (5.0, 4.0), **kwargs: Any):
    """A new figure: ``pyplot.figure`` when pyplot is already imported, else a bare Agg ``Figure``.

    The layout is "constrained" unless ``layout=`` says otherwise (labels never clipped, one layout pass).
    """
    kwargs.setdefault("layout", "constrained")
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, **kwargs)
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, **kwargs)


def new_axes(ax: Any = None, figsize: tuple[float, float] = (5.0, 4.0)):
    """``ax`` itself, or one axis on a new figure when ``ax`` is None."""
    if ax is not None:
        return ax
    return new_figure(figsize).add_subplot(1, 1, 1)


def figure_png(fig: Any, *, dpi: int = 96) -> bytes:
    """The figure rendered as PNG bytes by the Agg backend (then closed when pyplot owns it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()


def validated_probs(probs: Any, labels: Any, *, from_logits: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs [N, K] float64, labels [N] int64)``: the metrics' checks (:func:`caltrain.metrics.validation.prepare`,
    softmax first when from_logits) on the plain ``[N, K]`` / ``[N]`` shapes the plots take."""
    p = as_tensor(probs, "probs")
    y = as_tensor(labels, "labels")
    check_ndim(p, "probs", 2, "[N, K]")
    check_ndim(y, "labels", 1, "[N]")
    check_nonempty(p, "probs")
    check_same_length(p, y, "probs", "labels")
    p, y = prepare(p, y, from_logits=from_logits)
    return p.to(torch.float64), y


def top_label(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(confidence [N] float64, correct [N] float64)`` of the arg-max prediction (first index on ties):
    :func:`caltrain.metrics.ece.top_label` as float64, for weighted sums in the plots.

    Example:
        >>> conf, correct = top_label(torch.tensor([[0.2, 0.8], [0.6, 0.4]]), torch.tensor([1, 1]))
        >>> [round(c, 4) for c in conf.tolist()], correct.tolist()
        ([0.8, 0.6], [1.0, 0.0])
    """
    conf, correct = _top_label(probs, labels)
    return conf.to(torch.float64), correct.to(torch.float64)


def as_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def metric(name: str):
    """The function ``caltrain.metrics.<name>``; ImportError naming it when this installation lacks it."""
    from caltrain import metrics

    fn = getattr(metrics, name, None)
    if fn is None:
        raise ImportError(f"caltrain.metrics.{name} is not available in this installation")
    return fn
