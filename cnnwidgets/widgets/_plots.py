"""Small pictures and tables drawn as HTML or SVG text: no maths, only layout of numbers already computed."""

from __future__ import annotations

import html

import numpy as np

__all__ = ["line_plot_svg", "html_table"]


def line_plot_svg(
    x, y, *, marker: float | None = None, width: int = 290, height: int = 90, x_label: str = "", y_range=(0.0, 1.0)
) -> str:
    """A line plot of ``y`` against ``x`` as inline SVG, with a dashed vertical line at ``marker``.

    Parameters
    ----------
    x, y : array_like, shape (N,)
        Points of the curve; ``x`` increasing.
    marker : float, optional
        An x position to mark (a cutoff).
    width, height : int
        Size in CSS pixels.
    x_label : str
        Caption under the x axis.
    y_range : (float, float)
        The y values at the bottom and the top of the plot.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pad = 22
    x0, x1 = float(x[0]), float(x[-1])
    lo, hi = y_range

    def px(v):
        return pad + (v - x0) / (x1 - x0) * (width - pad - 6)

    def py(v):
        return 6 + (hi - v) / (hi - lo) * (height - pad - 6)

    pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, y))
    base = height - pad
    mark = ""
    if marker is not None:
        cx = px(marker)
        mark = f"<line x1='{cx:.1f}' y1='6' x2='{cx:.1f}' y2='{base}' style='stroke:var(--jp-ui-font-color3,#aaa)' stroke-dasharray='3,3'/>"
    return (
        f"<svg viewBox='0 0 {width} {height}' width='100%' style='font:10px sans-serif;max-width:{width}px;fill:var(--jp-ui-font-color1,#000)'>"
        f"<line x1='{pad}' y1='{base}' x2='{width - 6}' y2='{base}' style='stroke:var(--jp-ui-font-color2,#444)'/>"
        f"<line x1='{pad}' y1='6' x2='{pad}' y2='{base}' style='stroke:var(--jp-ui-font-color2,#444)'/>{mark}"
        f"<polyline points='{pts}' fill='none' style='stroke:var(--jp-brand-color1,#1565c0)' stroke-width='2'/>"
        f"<text x='{pad}' y='{base + 12}'>{x0:g}</text><text x='{width - 30}' y='{base + 12}'>{x1:g}</text>"
        f"<text x='2' y='12'>{hi:g}</text><text x='2' y='{base}'>{lo:g}</text>"
        f"<text x='{pad + 40}' y='{height - 2}'>{html.escape(x_label)}</text></svg>"
    )


def html_table(header, rows, *, font_size: int = 13) -> str:
    """An HTML table of already formatted cells (escaped).

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequence of str
    """
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table style='font-size:{font_size}px'><tr>{head}</tr>{body}</table>"
