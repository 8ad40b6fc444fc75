"""Charts drawn on the server as SVG: stacked bars per time bucket, one colour per series."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from markupsafe import Markup, escape

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899",
           "#84cc16", "#64748b")
MAX_SERIES = len(PALETTE) - 1  # the rest are summed as "other"
_W, _H, _LEFT, _BOTTOM, _TOP = 720, 180, 72, 22, 8


def money(value: float) -> str:
    """Dollars, with enough places that a fraction of a cent still shows."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}".rstrip("0").rstrip(".") \
        if value else "$0"


def top_series(series: dict[str, list[float]]) -> dict[str, list[float]]:
    """The biggest series by total, the rest folded into one 'other' series."""
    ranked = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    kept = dict(ranked[:MAX_SERIES])
    rest = ranked[MAX_SERIES:]
    if rest:
        kept["other"] = [sum(values) for values in zip(*(v for _, v in rest), strict=True)]
    return kept


def colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _label(moment: datetime, hourly: bool) -> str:
    return moment.strftime("%m-%d %H:00" if hourly else "%Y-%m-%d")


def stacked_bars(title: str, buckets: list[datetime], series: dict[str, list[float]],
                 palette: dict[str, str], fmt: Callable[[float], str], hourly: bool) -> Markup:
    """One bar per bucket, stacked by series; an accessible title and per-bar tooltips."""
    plot_w, plot_h = _W - _LEFT - 8, _H - _BOTTOM - _TOP
    stacks = [sum(values[i] for values in series.values()) for i in range(len(buckets))]
    peak = max(stacks, default=0.0) or 1.0
    step = plot_w / max(len(buckets), 1)
    bar_w = max(step * 0.8, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
             f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - 8}" y2="{_TOP + plot_h}" '
             f'stroke="#94a3b8"/>',
             f'<text x="{_LEFT - 4}" y="{_TOP + 10}" text-anchor="end">{escape(fmt(peak))}</text>',
             f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">0</text>']
    for i, start in enumerate(buckets):
        y = float(_TOP + plot_h)
        x = _LEFT + i * step + (step - bar_w) / 2
        for name, values in series.items():
            if values[i] <= 0:
                continue
            height = values[i] / peak * plot_h
            y -= height
            tip = f"{name} · {_label(start, hourly)}: {fmt(values[i])}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                         f'height="{max(height, 0.5):.1f}" fill="{palette[name]}">'
                         f'<title>{escape(tip)}</title></rect>')
    last = len(buckets) - 1
    for i in sorted({0, len(buckets) // 2, last}) if buckets else []:
        x = _LEFT + i * step + step / 2
        anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
        x = _LEFT if anchor == "start" else _W - 8 if anchor == "end" else x
        parts.append(f'<text x="{x:.1f}" y="{_H - 6}" text-anchor="{anchor}">'
                     f'{escape(_label(buckets[i], hourly))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
