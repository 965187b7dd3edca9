"""Vector figures for the HTML and Markdown reports: a few chart primitives written as SVG text, no matplotlib.

The report draws the data of the plot objects (:class:`~caltrain.report.ReliabilityDiagram`,
:class:`~caltrain.report.LearningCurves`, :class:`~caltrain.report.TradeoffScatter`, ...) as inline SVG, so a
report costs milliseconds per figure instead of a matplotlib draw and a PNG encode, its size grows with the
marks drawn (a few kB per panel), its text stays text (searchable, sharp at any zoom), and the page can show a
value on hover and hide what the reader did not pick. matplotlib stays the drawer of the plot objects' ``.plot()``.

A :class:`Canvas` is one figure: a title, panels (:class:`Panel`: linear axes with ticks, grid, axis labels and
marks) and a legend. Every element a reader may hover carries ``data-tip`` (the page's script shows it) and every
mark of an objective carries ``data-objective`` (the page highlights it from the table). The root element is
``<svg class="plot" data-title=...>`` with ``<text class="title">``, ``<text class="xlabel">``, ``<text
class="ylabel">`` and ``<g class="legend">`` children, which the browser test checks on every figure.

Example:
    >>> c = Canvas(320, 200, title="a line")
    >>> p = c.panel(50, 30, 250, 120, xlim=(0, 1), ylim=(0, 1), xlabel="x", ylabel="y")
    >>> p.line([0, 1], [0, 1], colour="#1f77b4", tip="y = x")
    >>> c.legend([("y = x", {"colour": "#1f77b4"})])
    >>> svg = c.render()
    >>> svg.startswith('<svg class="plot"') and 'class="xlabel"' in svg and 'class="legend"' in svg
    True
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence

__all__ = ["Canvas", "Panel", "as_file", "fmt", "legend_lines", "nice_ticks", "padded"]

#: The page's font, as attributes of the root (a stand-alone .svg file has no page CSS).
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="11"'


def as_file(svg: str) -> str:
    """An inline ``<svg class="plot">`` as the text of a stand-alone ``.svg`` file (with the SVG namespace)."""
    return svg.replace('<svg class="plot"', '<svg class="plot" xmlns="http://www.w3.org/2000/svg"', 1)


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def fmt(value: float, step: float | None = None) -> str:
    """A tick or value label: as many decimals as ``step`` needs (3 significant digits without one)."""
    if value is None or not math.isfinite(value):
        return "-"
    if step is None or step <= 0:
        return f"{value:.3g}"
    decimals = 0  # the fewest that write the step itself: 2.5 -> 1, 0.025 -> 3 (not 0 and 2: "2", "8" for 2.5, 7.5)
    while decimals < 12 and abs(round(step, decimals) - step) > 1e-9 * step:
        decimals += 1
    return f"{value:.{decimals}f}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], float]:
    """About ``n`` ticks at 1, 2 or 5 x 10^k within [lo, hi]; returns (ticks, step)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo], 1.0
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks, step


def padded(lo: float, hi: float, fraction: float = 0.06, *, floor: float | None = None,
           ceil: float | None = None) -> tuple[float, float]:
    """``[lo, hi]`` widened by ``fraction`` of its span on each side (a point range gets a unit span), clipped."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    lo, hi = lo - fraction * span, hi + fraction * span
    if floor is not None:
        lo = max(lo, floor)
    if ceil is not None:
        hi = min(hi, ceil)
    return lo, hi


def _attrs(tip: str | None = None, objective: str | None = None, cls: str | None = None) -> str:
    out = ""
    if cls:
        out += f' class="{_esc(cls)}"'
    if objective is not None:
        out += f' data-objective="{_esc(objective)}"'
    if tip:
        out += f' data-tip="{_esc(tip)}"'
    return out


def marker_path(kind: str, x: float, y: float, r: float) -> str:
    """An SVG element drawing marker ``kind`` ("o", "s", "^", "D", "v") centred at (x, y), radius r."""
    if kind == "s":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}"'
    if kind in ("^", "v"):
        s = -1 if kind == "^" else 1
        tip_y, base_y = y + s * r * 1.2, y - s * r * 0.8
        pts = f"{x:.1f},{tip_y:.1f} {x - r * 1.1:.1f},{base_y:.1f} {x + r * 1.1:.1f},{base_y:.1f}"
        return f'<polygon points="{pts}"'
    if kind == "D":
        pts = f"{x:.1f},{y - r * 1.3:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r * 1.3:.1f} {x - r:.1f},{y:.1f}"
        return f'<polygon points="{pts}"'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"'


class Panel:
    """One axis area: linear x and y scales over ``xlim`` / ``ylim`` mapped onto the box (x, y, w, h) in pixels.

    Marks outside the limits are clipped to the box. Ticks are at 1/2/5 x 10^k (:func:`nice_ticks`);
    ``xticks=False`` / ``yticks=False`` leave the labels out (shared axes of small multiples).
    """

    def __init__(self, x: float, y: float, w: float, h: float, *, xlim: tuple[float, float],
                 ylim: tuple[float, float], xlabel: str | None = None, ylabel: str | None = None,
                 title: str | None = None, xticks: bool = True, yticks: bool = True, n_ticks: int = 5,
                 clip_id: str = "") -> None:
        self.x, self.y, self.w, self.h = x, y, w, h
        self.xlim, self.ylim = xlim, ylim
        self.xlabel, self.ylabel, self.title = xlabel, ylabel, title
        self.xticks, self.yticks, self.n_ticks = xticks, yticks, n_ticks
        self.clip_id = clip_id
        self.marks: list[str] = []
        self.overlay: list[str] = []  # drawn above the clipped marks (unclipped: text, markers on the edge)

    def sx(self, v: float) -> float:
        lo, hi = self.xlim
        return self.x + (v - lo) / (hi - lo) * self.w if hi > lo else self.x + self.w / 2

    def sy(self, v: float) -> float:
        lo, hi = self.ylim
        return self.y + self.h - (v - lo) / (hi - lo) * self.h if hi > lo else self.y + self.h / 2

    def line(self, xs: Sequence[float], ys: Sequence[float], *, colour: str, width: float = 1.5,
             dash: str | None = None, tip: str | None = None, objective: str | None = None,
             opacity: float = 1.0, cls: str | None = None) -> None:
        """A polyline through the finite points (a gap where a value is NaN)."""
        segments, current = [], []
        for a, b in zip(xs, ys):
            if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
                if current:
                    segments.append(current)
                current = []
                continue
            current.append(f"{self.sx(a):.1f},{self.sy(b):.1f}")
        if current:
            segments.append(current)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        if opacity < 1:
            style += f' stroke-opacity="{opacity}"'
        for seg in segments:
            if len(seg) == 1:
                seg = seg * 2
            self.marks.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" '
                              f'stroke-width="{width}"{style}{_attrs(tip, objective, cls)}/>')

    def band(self, xs: Sequence[float], lo: Sequence[float], hi: Sequence[float], *, colour: str,
             opacity: float = 0.2, objective: str | None = None, tip: str | None = None) -> None:
        """A filled area between ``lo`` and ``hi`` (finite points only)."""
        pts = [(a, b, c) for a, b, c in zip(xs, lo, hi) if all(v is not None and math.isfinite(v) for v in (a, b, c))]
        if len(pts) < 2:
            return
        upper = " ".join(f"{self.sx(a):.1f},{self.sy(c):.1f}" for a, _, c in pts)
        lower = " ".join(f"{self.sx(a):.1f},{self.sy(b):.1f}" for a, b, _ in reversed(pts))
        self.marks.append(f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="{opacity}" '
                          f'stroke="none"{_attrs(tip, objective)}/>')

    def point(self, x: float, y: float, *, colour: str, marker: str = "o", size: float = 3.5,
              xerr: float | None = None, yerr: float | None = None, tip: str | None = None,
              objective: str | None = None, hollow: bool = False, overlay: bool = False) -> None:
        """A marker with optional symmetric error bars (in data units)."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        px, py = self.sx(x), self.sy(y)
        parts = []
        if xerr is not None and math.isfinite(xerr) and xerr > 0:
            a, b = self.sx(x - xerr), self.sx(x + xerr)
            parts.append(f'<path d="M{a:.1f},{py:.1f}H{b:.1f}M{a:.1f},{py - 3:.1f}v6M{b:.1f},{py - 3:.1f}v6" '
                         f'stroke="{colour}" stroke-width="1.2" fill="none"/>')
        if yerr is not None and math.isfinite(yerr) and yerr > 0:
            a, b = self.sy(y - yerr), self.sy(y + yerr)
            parts.append(f'<path d="M{px:.1f},{a:.1f}V{b:.1f}M{px - 3:.1f},{a:.1f}h6M{px - 3:.1f},{b:.1f}h6" '
                         f'stroke="{colour}" stroke-width="1.2" fill="none"/>')
        fill = "white" if hollow else colour
        shape = marker_path(marker, px, py, size) + f' fill="{fill}" stroke="{colour}" stroke-width="1.3"'
        target = self.overlay if overlay else self.marks
        if parts:
            target.append(f"<g{_attrs(tip, objective, 'mark')}>{''.join(parts)}{shape}/></g>")
        else:  # a lone marker carries its attributes itself (small multiples draw many)
            target.append(f"{shape}{_attrs(tip, objective, 'mark')}/>")

    def bars(self, left: Sequence[float], width: Sequence[float], height: Sequence[float], *, colour: str,
             bottom: Sequence[float] | None = None, opacity: float = 0.85, stroke: str | None = "#333",
             tips: Sequence[str | None] | None = None, objective: str | None = None,
             colours: Sequence[str] | None = None) -> None:
        """Rectangles from ``bottom`` (0 when None) to ``bottom + height``; NaN or zero heights are skipped.

        ``stroke``: the outline colour, None for none, or "gap" for an outline in each bar's own fill colour
        (a translucent bar that stays visible over another)."""
        for i, (a, w, hgt) in enumerate(zip(left, width, height)):
            b = 0.0 if bottom is None else bottom[i]
            tip = tips[i] if tips is not None else None
            if not all(v is not None and math.isfinite(v) for v in (a, w, hgt, b)) or (hgt == 0 and not tip):
                continue  # a zero bar is drawn (as a hairline) only when it has something to say on hover
            x0, x1 = self.sx(a), self.sx(a + w)
            y0, y1 = self.sy(b), self.sy(b + hgt)
            top, bot = min(y0, y1), max(y0, y1)
            fill = colours[i] if colours is not None else colour
            edge_colour = fill if stroke == "gap" else stroke
            width_px = 1.2 if stroke == "gap" else 0.5
            edge = f' stroke="{edge_colour}" stroke-width="{width_px}"' if stroke else ""
            self.marks.append(f'<rect x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 0.5):.1f}" '
                              f'height="{max(bot - top, 0.5):.1f}" fill="{fill}" fill-opacity="{opacity}"{edge}'
                              f'{_attrs(tip, objective)}/>')

    def steps(self, edges: Sequence[float], values: Sequence[float], *, colour: str, fill_opacity: float = 0.25,
              width: float = 1.4, objective: str | None = None, tip: str | None = None) -> None:
        """A histogram outline over ``edges`` [M+1] with ``values`` [M], filled beneath."""
        pts = [(self.sx(edges[0]), self.sy(0.0))]
        for i, v in enumerate(values):
            v = v if math.isfinite(v) else 0.0
            pts += [(self.sx(edges[i]), self.sy(v)), (self.sx(edges[i + 1]), self.sy(v))]
        pts.append((self.sx(edges[-1]), self.sy(0.0)))
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        self.marks.append(f'<polygon points="{d}" fill="{colour}" fill-opacity="{fill_opacity}" stroke="{colour}" '
                          f'stroke-width="{width}"{_attrs(tip, objective)}/>')

    def text(self, x: float, y: float, text: str, *, anchor: str = "start", size: float = 10,
             colour: str = "#333", data: bool = False, cls: str | None = None) -> None:
        """Text at data coordinates (``data=True``) or at a fraction (0..1) of the box from its top-left."""
        px, py = (self.sx(x), self.sy(y)) if data else (self.x + x * self.w, self.y + y * self.h)
        extra = f' class="{cls}"' if cls else ""
        self.overlay.append(f'<text x="{px:.1f}" y="{py:.1f}" text-anchor="{anchor}" font-size="{size}" '
                            f'fill="{colour}"{extra}>{_esc(text)}</text>')

    def diagonal(self) -> None:
        """The line y = x over the shared part of the limits (perfect calibration), dashed grey."""
        lo, hi = max(self.xlim[0], self.ylim[0]), min(self.xlim[1], self.ylim[1])
        self.line([lo, hi], [lo, hi], colour="#888", width=1, dash="4 3")

    def render(self) -> str:
        x, y, w, h = self.x, self.y, self.w, self.h
        out = ['<g class="panel">']
        xt, xstep = nice_ticks(*self.xlim, n=self.n_ticks)
        yt, ystep = nice_ticks(*self.ylim, n=self.n_ticks)
        grid = "".join(f"M{self.sx(t):.1f},{y:.1f}v{h:.1f}" for t in xt)
        grid += "".join(f"M{x:.1f},{self.sy(t):.1f}h{w:.1f}" for t in yt)
        out.append(f'<path d="{grid}" stroke="#e6e6e6" stroke-width="1" fill="none"/>')
        if self.clip_id:
            out.append(f'<clipPath id="{self.clip_id}"><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                       f'height="{h:.1f}"/></clipPath><g clip-path="url(#{self.clip_id})">')
        else:
            out.append("<g>")
        out.extend(self.marks)
        out.append("</g>")
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="none" stroke="#999" '
                   'stroke-width="0.8"/>')
        if self.xticks:
            out.extend(f'<text x="{self.sx(t):.1f}" y="{y + h + 12:.1f}" text-anchor="middle" font-size="9" '
                       f'fill="#555">{fmt(t, xstep)}</text>' for t in xt)
        if self.yticks:
            out.extend(f'<text x="{x - 4:.1f}" y="{self.sy(t) + 3:.1f}" text-anchor="end" font-size="9" '
                       f'fill="#555">{fmt(t, ystep)}</text>' for t in yt)
        if self.xlabel:
            out.append(f'<text class="xlabel" x="{x + w / 2:.1f}" y="{y + h + (25 if self.xticks else 13):.1f}" '
                       f'text-anchor="middle" font-size="10" fill="#333">{_esc(self.xlabel)}</text>')
        if self.ylabel:
            cx, cy = x - (34 if self.yticks else 8), y + h / 2
            out.append(f'<text class="ylabel" x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" font-size="10" '
                       f'fill="#333" transform="rotate(-90 {cx:.1f} {cy:.1f})">{_esc(self.ylabel)}</text>')
        if self.title:
            out.append(f'<text class="panel-title" x="{x + w / 2:.1f}" y="{y - 5:.1f}" text-anchor="middle" '
                       f'font-size="10.5" font-weight="600" fill="#222">{_esc(self.title)}</text>')
        out.extend(self.overlay)
        out.append("</g>")
        return "".join(out)


def legend_lines(labels: Sequence[str], width: float) -> int:
    """How many lines :meth:`Canvas.legend` takes for these labels within ``width`` pixels (left to right)."""
    lines, x = 1, 0.0
    for label in labels:
        w = 26 + 6.2 * len(label)
        if x > 0 and x + w > width:
            lines, x = lines + 1, 0.0
        x += w
    return lines


class Canvas:
    """One figure: a title at the top, panels, a legend, rendered as one ``<svg class="plot">`` element.

    ``width`` and ``height`` are the natural size in CSS pixels; the page scales the figure down to its column
    (``max-width: 100%``). ``slug`` makes the clip-path ids unique within a page.
    """

    def __init__(self, width: float, height: float, *, title: str, slug: str = "fig",
                 objective: str | None = None) -> None:
        self.width, self.height, self.title, self.slug, self.objective = width, height, title, slug, objective
        self.panels: list[Panel] = []
        self.extra: list[str] = []
        self.defs: list[str] = []
        self.legend_items: list[tuple[str, dict[str, Any]]] = []
        self.legend_box: tuple[float, float, float] | None = None  # x, y, max width
        self.legend_vertical = False

    def panel(self, x: float, y: float, w: float, h: float, **kwargs: Any) -> Panel:
        p = Panel(x, y, w, h, clip_id=f"{self.slug}-c{len(self.panels)}", **kwargs)
        self.panels.append(p)
        return p

    def legend(self, items: Iterable[tuple[str, dict[str, Any]]], *, x: float | None = None,
               y: float | None = None, width: float | None = None, vertical: bool = False) -> None:
        """Legend entries ``(label, style)``; style keys: ``colour``, ``marker`` (a point), ``dash``, ``width``
        (a line), ``fill`` (a swatch), ``opacity``, ``objective``, ``tip``. Laid out left to right from (x, y)
        (default: under the title), wrapping at ``width``; ``vertical`` puts one entry per line."""
        self.legend_items = list(items)
        self.legend_vertical = vertical
        self.legend_box = (x if x is not None else 12, y if y is not None else 34,
                           width if width is not None else self.width - 24)

    def hatch(self, name: str, colour: str) -> str:
        """A diagonal hatch pattern in ``colour`` (a fill that keeps what lies beneath visible); returns the
        fill value ``url(#...)``."""
        pid = f"{self.slug}-{name}"
        self.defs.append(f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="5" height="5">'
                         f'<rect width="5" height="5" fill="white" fill-opacity="0.35"/>'
                         f'<path d="M0,5 l5,-5 M-1,1 l2,-2 M4,6 l2,-2" stroke="{colour}" stroke-width="1.3"/>'
                         "</pattern>")
        return f"url(#{pid})"

    def add(self, markup: str) -> None:
        """Raw SVG markup drawn last (annotations)."""
        self.extra.append(markup)

    def _legend(self) -> str:
        if not self.legend_items or self.legend_box is None:
            return ""
        x0, y0, maxw = self.legend_box
        out, x, y = ['<g class="legend">'], x0, y0
        for label, style in self.legend_items:
            w = 26 + 6.2 * len(label)  # the same estimate as legend_lines
            if x > x0 and (self.legend_vertical or x + w > x0 + maxw):
                x, y = x0, y + 16
            colour = style.get("colour", "#333")
            attrs = _attrs(style.get("tip"), style.get("objective"), "legend-item")
            out.append(f"<g{attrs}>")
            if "fill" in style:
                out.append(f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="16" height="10" fill="{style["fill"]}" '
                           f'fill-opacity="{style.get("opacity", 0.6)}" stroke="{colour}" stroke-width="0.6"/>')
            else:
                dash = f' stroke-dasharray="{style["dash"]}"' if style.get("dash") else ""
                if style.get("line", "marker" not in style):
                    out.append(f'<path d="M{x:.1f},{y - 3:.1f}h18" stroke="{colour}" '
                               f'stroke-width="{style.get("width", 2)}"{dash}/>')
                if "marker" in style:
                    fill = "white" if style.get("hollow") else colour
                    out.append(marker_path(style["marker"], x + 9, y - 3, 3.5)
                               + f' fill="{fill}" stroke="{colour}" stroke-width="1.3"/>')
            out.append(f'<text x="{x + 22:.1f}" y="{y:.1f}" font-size="10" fill="#222">{_esc(label)}</text></g>')
            x += w
        out.append("</g>")
        return "".join(out)

    def render(self) -> str:
        """The inline ``<svg>`` element (:func:`as_file` makes it a stand-alone file)."""
        obj = f' data-objective="{_esc(self.objective)}"' if self.objective is not None else ""
        head = (f'<svg class="plot" viewBox="0 0 {self.width:.0f} '
                f'{self.height:.0f}" width="{self.width:.0f}" height="{self.height:.0f}" {FONT} role="img" '
                f'aria-label="{_esc(self.title)}" data-title="{_esc(self.title)}"{obj}>')
        title = (f'<text class="title" x="12" y="18" font-size="13" font-weight="600" fill="#111">'
                 f"{_esc(self.title)}</text>")
        body = "".join(p.render() for p in self.panels)
        defs = f"<defs>{''.join(self.defs)}</defs>" if self.defs else ""
        return head + defs + title + self._legend() + body + "".join(self.extra) + "</svg>"
