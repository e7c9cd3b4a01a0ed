"""Server-side SVG bar charts: no script, no style attribute (the CSP allows neither inline), only
SVG presentation attributes; a <title> and <desc> for screen readers, and one <title> per bar.

A value of None is a small count hidden to avoid re-identification: no bar is drawn and its label
reads "< 5" (the page's table says the same). MASKED is a count hidden although not small, so
that a small one cannot be worked out by subtraction (web.services.impact): no bar, « masqué ».
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from xml.sax.saxutils import escape, quoteattr

from flask_babel import lazy_gettext as _l
from markupsafe import Markup

# Okabe–Ito colours: told apart by people with colour-blindness, dark enough on white for bars.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000", "#999999")
TEXT = "#1a1a1a"
GRID = "#d0d0d0"
FONT = "system-ui, sans-serif"
HIDDEN_LABEL = "< 5"
_ids = count(1)


class Masked:
    """A count hidden beside others so that a small one cannot be worked out by subtraction."""

    def __str__(self) -> str:
        return str(_l("masqué"))


MASKED = Masked()
Value = int | None | Masked


@dataclass(frozen=True)
class Series:
    """One coloured set of bars; `values[i]` belongs to category i (None: hidden small count;
    MASKED: hidden too)."""

    name: str
    values: Sequence[Value]


def shown(value: Value) -> str:
    """How a count is written: the number, "< 5" when small, « masqué » when masked."""
    return HIDDEN_LABEL if value is None else str(value)


def _nice_max(values: Sequence[Value]) -> int:
    top = max([v for v in values if isinstance(v, int)] + [5])
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if top <= step * 5:
            return -(-top // step) * step
    return top


def _text(x: float, y: float, content: str, anchor: str = "start", size: int = 12,
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-family="{FONT}" font-weight="{weight}" fill="{TEXT}">{escape(content)}</text>')


def _open(width: int, height: int, title: str, description: str) -> tuple[str, list[str]]:
    uid = f"chart{next(_ids)}"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet" aria-labelledby="{uid}-t {uid}-d" '
            f'class="chart">')
    return uid, [head, f'<title id="{uid}-t">{escape(title)}</title>',
                 f'<desc id="{uid}-d">{escape(description)}</desc>']


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = []
    for i, s in enumerate(series):
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(_text(x + 16, y, s.name))
        x += 24 + 7 * len(s.name)
    return parts


def horizontal_bars(title: str, description: str, categories: Sequence[str],
                    series: Sequence[Series], label_width: int = 210, width: int = 720) -> Markup:
    """One row per category, one bar per series in it (grouped, never stacked: no totals)."""
    bar, gap = 16, 10
    legend_h = 28 if len(series) > 1 else 0
    row_h = bar * len(series) + gap
    plot_w = width - label_width - 60
    height = legend_h + 24 + row_h * len(categories) + 10
    top = _nice_max([v for s in series for v in s.values])
    _uid, parts = _open(width, height, title, description)
    if legend_h:
        parts += _legend(series, label_width, 18)
    y0 = legend_h + 10
    for tick in range(0, top + 1, max(1, top // 5)):
        x = label_width + plot_w * tick / top
        parts.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{height - 18:.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(x, height - 4, str(tick), anchor="middle", size=11))
    for row, category in enumerate(categories):
        y = y0 + row * row_h
        parts.append(_text(label_width - 8, y + row_h / 2 + 2, category, anchor="end"))
        for i, s in enumerate(series):
            value = s.values[row]
            by = y + i * bar
            w = plot_w * value / top if isinstance(value, int) else 0.0
            tip = f"{category} — {s.name} : {shown(value)}" if len(series) > 1 else \
                f"{category} : {shown(value)}"
            parts.append(f'<rect x="{label_width}" y="{by:.1f}" width="{w:.1f}" height="{bar - 2}" '
                         f'fill="{PALETTE[i % len(PALETTE)]}" data-value={quoteattr(shown(value))}>'
                         f'<title>{escape(tip)}</title></rect>')
            parts.append(_text(label_width + w + 4, by + bar - 4, shown(value), size=11))
    parts.append("</svg>")
    return Markup("".join(parts))


def vertical_bars(title: str, description: str, categories: Sequence[str],
                  series: Sequence[Series], width: int = 720, height: int = 300) -> Markup:
    """One group of bars per category (a month), one bar per series, side by side."""
    left, bottom, legend_h = 40, 40, 28 if len(series) > 1 else 8
    plot_w, plot_h = width - left - 10, height - bottom - legend_h - 10
    top = _nice_max([v for s in series for v in s.values])
    _uid, parts = _open(width, height, title, description)
    if len(series) > 1:
        parts += _legend(series, left, 18)
    y_base = legend_h + 10 + plot_h
    for tick in range(0, top + 1, max(1, top // 5)):
        y = y_base - plot_h * tick / top
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(left - 6, y + 4, str(tick), anchor="end", size=11))
    group_w = plot_w / max(1, len(categories))
    bar = max(2.0, min(22.0, (group_w - 6) / max(1, len(series))))
    for col, category in enumerate(categories):
        gx = left + col * group_w + (group_w - bar * len(series)) / 2
        parts.append(_text(left + (col + 0.5) * group_w, y_base + 16, category, anchor="middle", size=11))
        for i, s in enumerate(series):
            value = s.values[col]
            h = plot_h * value / top if isinstance(value, int) else 0.0
            x = gx + i * bar
            tip = f"{category} — {s.name} : {shown(value)}" if len(series) > 1 else \
                f"{category} : {shown(value)}"
            parts.append(f'<rect x="{x:.1f}" y="{y_base - h:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[i % len(PALETTE)]}" data-value={quoteattr(shown(value))}>'
                         f'<title>{escape(tip)}</title></rect>')
            if value is None:  # a dashed stub on the axis: "something, fewer than five"
                parts.append(f'<line x1="{x:.1f}" y1="{y_base - 2:.1f}" x2="{x + bar - 1:.1f}" '
                             f'y2="{y_base - 2:.1f}" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="3" '
                             f'stroke-dasharray="2 2"/>')
            label = shown(value)  # « < 5 » as in the tables and the CSV (« <5 » fitted more, touching)
            if bar >= 6 * len(label) and len(categories) * len(series) <= 48:
                parts.append(_text(x + bar / 2, y_base - h - 5, label, anchor="middle", size=10))
    parts.append("</svg>")
    return Markup("".join(parts))
