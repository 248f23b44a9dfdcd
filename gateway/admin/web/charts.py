"""Inline SVG charts for the compliance dashboard: no script, no external asset.

>>> svg = stacked_bars([("icbc-cq", {"settled": 3, "outstanding": 1})], [("settled", "已入账"), ("outstanding", "未回执")])
>>> svg.startswith("<svg") and "icbc-cq" in svg and "已入账" in svg
True
"""

from __future__ import annotations

from markupsafe import Markup, escape

COLOURS = {"settled": "#2e7d32", "rejected": "#c62828", "returned": "#ef6c00", "outstanding": "#1565c0",
           "awaiting": "#9e9e9e", "overdue": "#6a1b9a"}


def stacked_bars(rows: list[tuple[str, dict[str, int]]], series: list[tuple[str, str]], *, width: int = 640,
                 bar_height: int = 22) -> Markup:
    """One horizontal bar per row, stacked by ``series`` (key, label), with a legend and counts."""
    label_w, gap = 150, 10
    plot_w = width - label_w - 60
    legend, x, ly = [], 0, 4
    for key, label in series:
        w = 28 + sum(12 if ord(ch) > 0x2e80 else 7 for ch in label)
        if x and x + w > width:
            x, ly = 0, ly + 18
        legend.append(f'<rect x="{x}" y="{ly}" width="12" height="12" fill="{COLOURS.get(key, "#607d8b")}"/>'
                      f'<text x="{x + 16}" y="{ly + 10}">{escape(label)}</text>')
        x += w
    legend_h = ly + 24
    height = legend_h + len(rows) * (bar_height + gap) + gap
    top = max([sum(v.get(k, 0) for k, _ in series) for _, v in rows] + [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Noto Sans CJK SC, sans-serif" font-size="12">', *legend]
    y = legend_h
    for name, values in rows:
        out.append(f'<text x="0" y="{y + bar_height - 7}">{escape(name)}</text>')
        bx = label_w
        total = 0
        for key, label in series:
            n = values.get(key, 0)
            total += n
            if n:
                w = max(1.0, plot_w * n / top)
                out.append(f'<rect x="{bx:.1f}" y="{y}" width="{w:.1f}" height="{bar_height}" '
                           f'fill="{COLOURS.get(key, "#607d8b")}"><title>{escape(label)}: {n}</title></rect>')
                bx += w
        out.append(f'<text x="{bx + 6:.1f}" y="{y + bar_height - 7}">{total}</text>')
        y += bar_height + gap
    out.append("</svg>")
    return Markup("".join(out))
