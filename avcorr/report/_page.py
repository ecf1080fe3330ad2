"""HTML pieces of the run report: escaping, tables and line charts drawn as inline SVG (no script, no
network, nothing to install)."""

from __future__ import annotations

import html
import math
from typing import Iterable, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#23324a;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;opacity:.85}main{padding:8px 24px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:17px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f4f6;font-weight:600}
.warn{background:#fff4e5;border-left:4px solid #f59e0b;padding:6px 10px;margin:6px 0}
.ok{color:#15803d}.bad{color:#b91c1c}.muted{color:#6b7280}
.charts{display:flex;flex-wrap:wrap;gap:14px}.chart{border:1px solid #eee;border-radius:4px;padding:4px;margin:0}
.chart figcaption{font-weight:600;font-size:13px;margin:2px 6px}
pre{background:#f6f8fa;padding:10px;overflow:auto;max-height:480px;font-size:12px}
nav a{margin-right:14px;color:#fff}
details{margin:6px 0}summary{cursor:pointer;font-weight:600;margin:4px 0}
.gallery{display:flex;flex-direction:column;gap:8px}.row{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}
.card{border:2px solid #e5e7eb;border-radius:4px;padding:4px;margin:0;width:176px;font-size:12px}
.card img{display:block;max-width:168px;height:auto;margin-bottom:2px}.card audio{width:168px;height:30px}
.card.query{border-color:#23324a}.card.ok{border-color:#86efac}.card.bad{border-color:#fca5a5}
.card.wide{width:auto;max-width:1000px}.media{display:inline-block;vertical-align:top}
.card.wide>img{display:inline-block;vertical-align:top;margin-right:4px}img.spec{border:1px solid #9ca3af}.card.wide table{display:inline-table;vertical-align:top;margin-left:8px}
.card img.timeline{max-width:960px}.bar{display:inline-block;height:8px;background:#1f77b4}
"""


def esc(value: object) -> str:
    """``value`` as HTML text."""
    return html.escape(str(value), quote=True)


def fmt(value: object) -> str:
    """A number in four significant digits (integers as they are), anything else as text."""
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    return esc(value)


def table(header: Sequence[str], rows: Iterable[Sequence[object]], raw: bool = False) -> str:
    """An HTML table; cells are formatted with :func:`fmt` unless ``raw`` (already HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], refs: dict[str, float] | None = None,
               width: int = 420, height: int = 250, x_label: str = "step") -> str:
    """A line chart as inline SVG.

    Args:
        title: the caption.
        series: name -> [(x, y), ...] (drawn as lines with dots).
        refs: name -> y of a horizontal reference line (dashed: a baseline, a ceiling).
        width, height: size in CSS pixels.
        x_label: the x axis' name.

    Returns:
        A ``<figure>`` holding the SVG and a legend.
    """
    refs = {k: v for k, v in (refs or {}).items() if isinstance(v, (int, float)) and math.isfinite(v)}
    points = [p for pts in series.values() for p in pts if math.isfinite(p[1])]
    if not points:
        return ""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + list(refs.values())
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.06
    y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 52, 10, 8, 34

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'aria-label="{esc(title)}">']
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" font-size="10" text-anchor="end">{t:.3g}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<text x="{sx(t):.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">'
                   f'{t:.6g}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 4}" font-size="10" text-anchor="middle" '
               f'fill="#555">{esc(x_label)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
               'fill="none" stroke="#bbb"/>')
    legend = []
    for i, (name, y) in enumerate(refs.items()):
        colour = "#6b7280" if i % 2 == 0 else "#a16207"
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="{colour}" '
                   f'stroke-dasharray="5,4"/>')
        legend.append(f'<span style="color:{colour}">- - {esc(name)} {fmt(y)}</span>')
    for i, (name, pts) in enumerate(series.items()):
        pts = [p for p in sorted(pts) if math.isfinite(p[1])]
        if not pts:
            continue
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        out.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.4" fill="{colour}"><title>{esc(name)} '
                   f'{x:.6g}: {y:.4g}</title></circle>' for x, y in pts)
        legend.append(f'<span style="color:{colour}">&#9679; {esc(name)} (last {fmt(pts[-1][1])})</span>')
    out.append("</svg>")
    return (f'<figure class="chart"><figcaption>{esc(title)}</figcaption>{"".join(out)}'
            f'<div style="font-size:12px;margin:0 6px">{" &nbsp; ".join(legend)}</div></figure>')


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], sections: Sequence[str]) -> str:
    """The whole document: one file, its style inline, no script and no external resource."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(name)}</a>' for anchor, name in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p>"
            f"<nav>{links}</nav></header><main>{''.join(sections)}</main></body></html>\n")
