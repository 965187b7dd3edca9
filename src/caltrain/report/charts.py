"""The report's figures as SVG (:mod:`caltrain.report.svg`), drawn from the plot objects' data.

Each function takes the data a plot object holds (a :class:`~caltrain.report.TradeoffScatter`, per-objective
curves, :class:`~caltrain.report.ReliabilityDiagram` panels, :class:`~caltrain.report.OODHistogram` panels)
and returns one ``<svg class="plot">`` string with a title, axis labels and a legend naming what is drawn.
Small multiples are one figure per grid: one panel per objective, shared axes, the reference objective drawn
faintly in every panel so each is read against it (instead of many curves overlapping on one axis).

Example:
    >>> import numpy as np
    >>> x = np.arange(1.0, 4.0)
    >>> cards = [CurveCard("ce", "#1f77b4", {"ece": Curve(x, np.array([0.3, 0.2, 0.1]), end=0.12)}),
    ...          CurveCard("ls", "#ff7f0e", {"ece": Curve(x, np.array([0.2, 0.1, 0.05]), end=0.06)})]
    >>> svg = card_grid(cards, [("ece", "val ECE %", 100)], title="ECE per objective", xlabel="epoch",
    ...                 reference=cards[0], legend=[("mean over seeds", {"colour": "#444"})])
    >>> svg.count('class="panel"'), "ls, val ECE %, epoch 2: 10.000" in svg
    (2, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from caltrain.report.svg import Canvas, fmt, legend_lines, padded

#: Lines with at most this many points get a marker (and a hover value) per point; longer ones show all their
#: values on hovering the line (a marker per epoch of 11 objectives x 3 metrics x 30 epochs would weigh 200 kB).
MAX_POINT_MARKERS = 12

#: The narrowest figure (room for its title and legend, however few panels it has).
MIN_WIDTH = 640

__all__ = ["Curve", "CurveCard", "card_grid", "ood_grid", "reliability_row", "tradeoff"]

#: The grey of the reference objective drawn behind every panel.
REFERENCE_GREY = "#9a9a9a"


def _finite(values: Any) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def _limits(values: Sequence[Any], *, floor: float | None = None, ceil: float | None = None) -> tuple[float, float]:
    allv = np.concatenate([_finite(v) for v in values] or [np.zeros(0)])
    if allv.size == 0:
        return 0.0, 1.0
    return padded(float(allv.min()), float(allv.max()), floor=floor, ceil=ceil)


def tradeoff(views: Sequence[tuple[str, Any]], *, dataset: str, colours: dict[str, str], markers: dict[str, str],
             metric_label: str = "ECE", reference: str | None = None, tolerance: float | None = None,
             width: float = 470, height: float = 330, slug: str = "tradeoff") -> list[str]:
    """One scatter per view (``(name, TradeoffScatter)``: "uncalibrated", "after ts", ...), sharing the x axis.

    The y axis is each view's own: a calibrator often divides the ECE by several times, and on a shared axis the
    calibrated points would sit in a sliver at the bottom.

    x: test accuracy (%), y: test ``metric_label`` (%), error bars: std across seeds; with ``reference`` and
    ``tolerance`` the region "no accuracy cost" (accuracy >= reference's - tolerance) is shaded.
    """
    xs = [100 * np.asarray(s.accuracy_mean) for _, s in views]
    xe = [100 * np.nan_to_num(np.asarray(s.accuracy_std)) for _, s in views]
    ys = [100 * np.asarray(s.ece_mean) for _, s in views]
    ye = [100 * np.nan_to_num(np.asarray(s.ece_std)) for _, s in views]
    xlim = _limits([np.concatenate([x - e, x + e]) for x, e in zip(xs, xe)])
    out = []
    legend_x = width - 150
    for vi, (name, scatter) in enumerate(views):
        canvas = Canvas(width, height, title=f"{dataset}: accuracy vs {metric_label}, {name}", slug=f"{slug}-{vi}")
        ylim = _limits([ys[vi] - ye[vi], ys[vi] + ye[vi]], floor=0.0)
        panel = canvas.panel(52, 30, legend_x - 70, height - 72, xlim=xlim, ylim=ylim,
                             xlabel="test accuracy (%)", ylabel=f"test {metric_label} (%), {name}")
        items = []
        if reference is not None and tolerance is not None and reference in scatter.objectives:
            ref_acc = 100 * float(scatter.accuracy_mean[scatter.objectives.index(reference)]) - 100 * tolerance
            panel.bars([ref_acc], [xlim[1] - ref_acc], [ylim[1] - ylim[0]], bottom=[ylim[0]], colour="#2ca02c",
                       opacity=0.07, stroke=None,
                       tips=[f"no accuracy cost: accuracy >= {reference}'s - {100 * tolerance:.1f} pp"])
            panel.line([ref_acc, ref_acc], list(ylim), colour="#2ca02c", width=1, dash="3 3")
            items.append((f"≥ {reference} − {100 * tolerance:.1f} pp acc", {"fill": "#2ca02c", "opacity": 0.15,
                                                                          "colour": "#2ca02c"}))
        order = sorted(range(len(scatter.objectives)), key=lambda i: list(colours).index(scatter.objectives[i]))
        for i in order:
            obj = scatter.objectives[i]
            tip = (f"{obj} ({int(scatter.n_seeds[i])} seeds), {name}: accuracy {xs[vi][i]:.2f} ± {xe[vi][i]:.2f}%, "
                   f"{metric_label} {ys[vi][i]:.2f} ± {ye[vi][i]:.2f}%")
            panel.point(xs[vi][i], ys[vi][i], xerr=xe[vi][i], yerr=ye[vi][i], colour=colours[obj],
                        marker=markers[obj], tip=tip, objective=obj, size=4)
            items.append((obj, {"colour": colours[obj], "marker": markers[obj], "objective": obj, "tip": tip}))
        canvas.legend(items, x=legend_x, y=40, width=140, vertical=True)
        canvas.add(f'<text x="{legend_x:.0f}" y="{height - 12:.0f}" font-size="9" fill="#666">'
                   "bars: ± std over seeds</text>")
        out.append(canvas.render())
    return out


@dataclass
class Curve:
    """One series of a card panel: x [E], the mean [E], and optionally a band (lo, hi) and an end value."""

    x: np.ndarray
    mean: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    end: float | None = None  # a separate value drawn after the last x (e.g. the test value of the model)
    end_tip: str | None = None


@dataclass
class CurveCard:
    """One objective's card: a curve per metric row (None where it has none)."""

    name: str
    colour: str
    curves: dict[str, Curve | None] = field(default_factory=dict)
    subtitle: str = ""


def card_grid(cards: Sequence[CurveCard], rows: Sequence[tuple[str, str, float]], *, title: str, xlabel: str,
              reference: CurveCard | None = None, legend: Sequence[tuple[str, dict[str, Any]]] = (),
              columns: int = 6, panel_w: float = 190, panel_h: float = 68, slug: str = "cards") -> str:
    """Small multiples: one card per objective (columns wrap), one panel per metric row, shared axes per row.

    Args:
        cards: the objectives' cards.
        rows: ``(key, y label, scale)`` per metric row (values are multiplied by ``scale``: 100 for %).
        title, xlabel: the figure's title and x label.
        reference: drawn in grey, dashed, in every panel of the other cards.
        legend: the legend entries (what the marks are).
        columns: cards per line.
    """
    columns = max(1, min(columns, len(cards)))
    lines = math.ceil(len(cards) / columns)
    width = max(58 + columns * (panel_w + 22), MIN_WIDTH)
    left, gap_x, card_title = 58, 22, 18
    top = 40 + 16 * legend_lines([label for label, _ in legend], width - 24) + 14
    card_h = card_title + len(rows) * (panel_h + 8) + 18
    height = top + lines * card_h + 22
    canvas = Canvas(width, height, title=title, slug=slug)
    canvas.legend(legend, x=12, y=36, width=width - 24)
    limits = {}
    xs_all = [c.x for card in [*cards, *([reference] if reference else [])] for c in card.curves.values() if c]
    xmax = max((float(np.nanmax(x)) for x in xs_all if len(x)), default=1.0)
    xmin = min((float(np.nanmin(x)) for x in xs_all if len(x)), default=0.0)
    xlim = (xmin, xmax + max(0.08 * (xmax - xmin), 0.5))
    for key, _, scale in rows:
        vals = []
        for card in [*cards, *([reference] if reference else [])]:
            c = card.curves.get(key)
            if c is None:
                continue
            vals += [scale * c.mean] + ([scale * c.lo, scale * c.hi] if c.lo is not None else [])
            if c.end is not None:
                vals.append(np.array([scale * c.end]))
        limits[key] = _limits(vals)
    for ci, card in enumerate(cards):
        gx, gy = ci % columns, ci // columns
        x0 = left + gx * (panel_w + gap_x)
        y0 = top + gy * card_h
        canvas.add(f'<g data-objective="{_attr(card.name)}"><rect x="{x0:.0f}" y="{y0 + 3:.0f}" width="10" '
                   f'height="10" fill="{card.colour}"/><text class="panel-title" x="{x0 + 14:.0f}" y="{y0 + 12:.0f}" '
                   f'font-size="11" font-weight="600" fill="#222">{_text(card.name)}</text>'
                   f'<text x="{x0 + panel_w:.0f}" y="{y0 + 12:.0f}" text-anchor="end" font-size="9" fill="#666">'
                   f"{_text(card.subtitle)}</text></g>")
        for ri, (key, ylabel, scale) in enumerate(rows):
            py = y0 + card_title + ri * (panel_h + 8)
            bottom = ri == len(rows) - 1
            panel = canvas.panel(x0, py, panel_w, panel_h, xlim=xlim, ylim=limits[key],
                                 xlabel=xlabel if bottom and gy == lines - 1 else None,
                                 ylabel=ylabel if gx == 0 else None, xticks=bottom, yticks=gx == 0, n_ticks=4)
            ref = reference.curves.get(key) if reference is not None and reference is not card else None
            if ref is not None:
                panel.line(ref.x, scale * ref.mean, colour=REFERENCE_GREY, width=1.2, dash="4 2",
                           tip=f"{reference.name} (reference): " + _series_tip(ref, scale, ylabel, xlabel))
            c = card.curves.get(key)
            if c is None:
                panel.text(0.5, 0.5, "not recorded", anchor="middle", size=9, colour="#999")
                continue
            if c.lo is not None and c.hi is not None:
                panel.band(c.x, scale * c.lo, scale * c.hi, colour=card.colour, opacity=0.22, objective=card.name)
            panel.line(c.x, scale * c.mean, colour=card.colour, width=1.7, objective=card.name,
                       tip=f"{card.name}: " + _series_tip(c, scale, ylabel, xlabel))
            for xv, yv in zip(c.x, scale * c.mean) if len(c.x) <= MAX_POINT_MARKERS else ():
                if math.isfinite(yv):
                    panel.point(float(xv), float(yv), colour=card.colour, size=1.6, objective=card.name,
                                tip=f"{card.name}, {ylabel}, {xlabel} {fmt(float(xv))}: {yv:.3f}")
            if c.end is not None and math.isfinite(c.end):
                panel.point(xlim[1] - 0.35 * (xlim[1] - xmax), scale * c.end, colour=card.colour, marker="D",
                            size=3.2, hollow=True, objective=card.name,
                            tip=c.end_tip or f"{card.name}: {scale * c.end:.3f}")
    return canvas.render()


def _series_tip(c: Curve, scale: float, label: str, xlabel: str) -> str:
    """Every value of the line (the hover of a long line, whose points carry no marker of their own)."""
    pts = [f"{fmt(float(x))}: {scale * float(v):.3g}" for x, v in zip(c.x, c.mean) if math.isfinite(v)]
    return f"{label} by {xlabel}: " + ", ".join(pts)


def _attr(text: str) -> str:
    import html

    return html.escape(str(text), quote=True)


_text = _attr


def reliability_row(diagrams: Sequence[tuple[str, Any]], *, title: str, objective: str, colour: str,
                    panel: float = 200, slug: str = "rel", xlim: tuple[float, float] = (0.0, 1.0)) -> str:
    """Reliability diagrams side by side (``(view, ReliabilityDiagram)``: before, after each calibrator).

    Each panel: accuracy per bin (bars), the gap to the mean confidence (red above the bar = over-confident,
    green = under-confident), the diagonal, the ECE, and the fraction of samples per bin beneath. ``xlim``: the
    confidence range drawn (a binary top-label confidence max(s, 1 - s) lies in [0.5, 1]).
    """
    n = len(diagrams)
    left, top, hist_h, gap = 50, 84, 34, 26
    width = max(left + n * (panel + gap), MIN_WIDTH)
    height = top + panel + hist_h + 52
    canvas = Canvas(width, height, title=title, slug=slug, objective=objective)
    bins = f"{diagrams[0][1].n_bins} {'equal-width' if diagrams[0][1].binning == 'uniform' else 'equal-mass'} bins"
    canvas.legend([(f"accuracy per bin ({bins})", {"fill": colour, "opacity": 0.85, "colour": "#333"}),
                   ("gap to mean confidence, hatched: red = over-confident", {"fill": "#d62728", "opacity": 0.3,
                                                                            "colour": "#d62728"}),
                   ("green = under-confident", {"fill": "#2ca02c", "opacity": 0.3, "colour": "#1a7f1a"}),
                   ("perfect calibration", {"colour": "#888", "dash": "4 3", "width": 1}),
                   ("fraction of samples per bin (beneath)", {"fill": "#888", "opacity": 0.8, "colour": "#333"})],
                  x=12, y=36, width=width - 24)
    over, under = canvas.hatch("over", "#d62728"), canvas.hatch("under", "#1a7f1a")
    hmax = max((float(np.max(d.count / max(d.n, 1))) for _, d in diagrams), default=1.0)
    for i, (view, d) in enumerate(diagrams):
        x0 = left + i * (panel + gap)
        p = canvas.panel(x0, top, panel, panel, xlim=xlim, ylim=(0, 1), ylabel="accuracy" if i == 0 else None,
                         title=f"{view} · ECE {100 * d.ece:.2f}%", xticks=False, yticks=i == 0, n_ticks=6)
        edges = np.asarray(d.edges, dtype=np.float64).copy()
        if d.binning == "quantile":
            edges[0], edges[-1] = max(edges[0], d.data_range[0]), min(edges[-1], d.data_range[1])
            edges = np.maximum.accumulate(edges)
        left_e, widths = edges[:-1], np.diff(edges)
        filled = d.count > 0
        acc = np.where(filled, d.accuracy, np.nan)
        conf = np.where(filled, d.confidence, np.nan)
        tips = [f"bin ({edges[b]:.3f}, {edges[b + 1]:.3f}]: accuracy {acc[b]:.3f}, mean confidence {conf[b]:.3f}, "
                f"{int(d.count[b])} samples ({100 * d.count[b] / max(d.n, 1):.1f}%)" if filled[b] else None
                for b in range(len(acc))]
        p.bars(left_e, widths, np.where(filled, acc, np.nan), colour=colour, tips=tips)
        gap_h = np.where(filled, conf - acc, np.nan)
        tint = [over if (g >= 0) else under for g in np.nan_to_num(gap_h)]
        p.bars(left_e, widths, gap_h, bottom=np.nan_to_num(acc), colour=over, colours=tint, opacity=1.0,
               stroke=None)
        p.diagonal()
        h = canvas.panel(x0, top + panel + 6, panel, hist_h, xlim=xlim, ylim=(0, hmax * 1.05),
                         xlabel="confidence", ylabel="fraction" if i == 0 else None, yticks=False, n_ticks=6)
        frac = d.count / max(d.n, 1)
        h.bars(left_e, widths, frac, colour="#888", opacity=0.8)
    return canvas.render()


def ood_grid(panels: Sequence[tuple[str, str, Any, str]], *, title: str, in_name: str, out_name: str,
             score_label: str, columns: int = 6, panel_w: float = 190, panel_h: float = 110,
             slug: str = "ood") -> str:
    """Small multiples of :class:`~caltrain.report.OODHistogram` (``(objective, colour, histogram, subtitle)``):
    the in-distribution set ``in_name`` and the OOD set ``out_name``, shared axes."""
    columns = max(1, min(columns, len(panels)))
    lines = math.ceil(len(panels) / columns)
    left, top, gap_x, gap_y = 50, 60, 22, 58
    width = max(left + columns * (panel_w + gap_x), MIN_WIDTH)
    height = top + lines * (panel_h + gap_y) + 8
    canvas = Canvas(width, height, title=title, slug=slug)
    canvas.legend([(f"in-distribution: {in_name}", {"fill": "#1f77b4", "opacity": 0.35, "colour": "#1f77b4"}),
                   (f"out-of-distribution: {out_name}", {"fill": "#d62728", "opacity": 0.35, "colour": "#d62728"})],
                  x=12, y=36, width=width - 24)
    xlim = _limits([np.asarray(h.edges) for _, _, h, _ in panels])
    ymax = max((float(np.nanmax(np.concatenate([h.in_density, h.out_density]))) for _, _, h, _ in panels),
               default=1.0)
    for i, (obj, _colour, hist, subtitle) in enumerate(panels):
        gx, gy = i % columns, i // columns
        x0 = left + gx * (panel_w + gap_x)
        y0 = top + 14 + gy * (panel_h + gap_y)
        p = canvas.panel(x0, y0, panel_w, panel_h, xlim=xlim, ylim=(0, ymax * 1.05), title=f"{obj} {subtitle}",
                         xlabel=score_label, ylabel="density" if gx == 0 else None, yticks=gx == 0, n_ticks=5)
        p.steps(hist.edges, hist.in_density, colour="#1f77b4", objective=obj, tip=f"{obj}: {in_name}")
        p.steps(hist.edges, hist.out_density, colour="#d62728", objective=obj, tip=f"{obj}: OOD {out_name}")
    return canvas.render()
