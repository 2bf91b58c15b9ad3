"""Server-rendered SVG charts (pygal) for the analytics dashboard.

Each chart is drawn on the server with pygal's JavaScript off and handed to the page as
an ``<img>`` with a ``data:image/svg+xml`` URI: the strict CSP (``img-src 'self' data:``,
no inline styles or scripts in the page) holds, the SVG's own stylesheet applies inside
the image only, and nothing in it can run. Every chart sits beside a data table with the
same numbers, for screen readers and for copying.
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pygal
from pygal.style import Style

# Importing pygal appends a legacy import finder for its map plugins (which we do not use)
# to ``sys.meta_path``; it lacks ``find_spec``, so Python 3.11 raises an ImportWarning on
# every failed import anywhere in the process that reaches it. Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__module__ != "pygal"]

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#3d4a50",
    foreground_strong="#1f2d33",
    foreground_subtle="#d3ccc0",
    opacity=".85",
    opacity_hover="1",
    colors=("#2e6f66", "#c9783a", "#6d8fa8", "#9a5fa0", "#b3a03c"),
    font_family=_FONT,
    label_font_family=_FONT,
    major_label_font_family=_FONT,
    value_font_family=_FONT,
    legend_font_family=_FONT,
    title_font_family=_FONT,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
    value_font_size=13,
    title_font_size=16,
)

#: Pygal's scripts (its tooltips) would not run inside an image; drop them and the
#: tooltip group, so the image is plain drawing.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


@dataclass(frozen=True)
class Chart:
    """One rendered chart: the image's data URI and its text alternative."""

    src: str
    alt: str


def _render(chart: pygal.graph.graph.Graph, alt: str) -> Chart:
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return Chart(f"data:image/svg+xml;base64,{data}", alt)


def _config(**kw: object) -> dict[str, object]:
    return {
        "style": STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "width": 640,
        "height": 300,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 3,
        "margin": 12,
        # pygal under-measures the legend row with these fonts: room for it below.
        "margin_bottom": 30,
        "stroke_style": {"width": 2.5},
        "guide_stroke_dasharray": "2,4",
        "show_y_guides": True,
        "print_values": False,
        "truncate_label": -1,
        "truncate_legend": -1,
        **kw,
    }


def weekly_lines(
    weeks: Sequence[str],
    series: dict[str, Sequence[float | None]],
    alt: str,
    *,
    percent: bool = False,
) -> Chart:
    """Trends over weeks: one line per series (``None`` leaves a gap)."""
    chart = pygal.Line(
        **_config(
            x_labels=list(weeks),
            value_formatter=(lambda v: f"{v:.0f}%") if percent else (lambda v: f"{v:g}"),
            range=(0, 100) if percent else None,
            include_x_axis=True,
            min_scale=4,
            max_scale=6,
            dots_size=4,
            allow_interruptions=True,
            show_legend=len(series) > 1,
        )
    )
    for name, values in series.items():
        chart.add(name, [None if v is None else (v * 100 if percent else v) for v in values])
    return _render(chart, alt)


def bars(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    alt: str,
    *,
    percent: bool = False,
) -> Chart:
    """A comparison across categories (channels, waves, modes): one bar group each."""
    chart = pygal.Bar(
        **_config(
            x_labels=list(labels),
            value_formatter=(lambda v: f"{v:.0f}%") if percent else (lambda v: f"{v:g}"),
            range=(0, 100) if percent else None,
            min_scale=4,
            max_scale=6,
            print_values=True,
            print_values_position="top",
            show_legend=len(series) > 1,
        )
    )
    for name, values in series.items():
        chart.add(name, [None if v is None else (v * 100 if percent else v) for v in values])
    return _render(chart, alt)
