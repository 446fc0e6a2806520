"""The report as one self-contained HTML page (report.html): inline CSS, inline SVG bar charts, no script and
no external URL, so it opens anywhere an auditor reads it. Pure."""

from __future__ import annotations

from html import escape

from svpn.report.model import Report
from svpn.report.sections import Chart, Section, Table, sections

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ccc; padding-top: .6em; }
h2.alarm { border-color: #c33; color: #a11; }
table { border-collapse: collapse; margin: .5em 0 1.2em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
.source { color: #666; font-size: .85em; } .empty { color: #888; font-style: italic; }
nav a { margin-right: 1em; } svg text { font-size: 12px; fill: #222; }
details > summary { cursor: pointer; font-weight: bold; margin: .4em 0; }
"""
BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, TRACK_WIDTH, TEXT_WIDTH = 22, 8, 160, 420, 170
LONG_TABLE = 50  # a table with more rows is folded (<details>): the page stays readable with 10,000 users


def chart_svg(chart: Chart) -> str:
    """Horizontal bars, each on a track scaled to the largest value or limit; a limit is a dark mark."""
    top = max([b.value for b in chart.bars] + [b.limit or 0 for b in chart.bars] + [1])
    height = len(chart.bars) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    width = LABEL_WIDTH + TRACK_WIDTH + TEXT_WIDTH
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart.id}" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(chart.title)}</title>'
    ]
    for i, bar in enumerate(chart.bars):
        y = BAR_GAP + i * (BAR_HEIGHT + BAR_GAP)
        length = max(1.0, TRACK_WIDTH * bar.value / top)
        over = bar.limit is not None and bar.value > bar.limit
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect class="track" x="{LABEL_WIDTH}" y="{y}" width="{TRACK_WIDTH}" height="{BAR_HEIGHT}" '
            'fill="#eee"/>'
            f'<rect class="bar" data-label="{escape(bar.label)}" x="{LABEL_WIDTH}" y="{y}" '
            f'width="{length:.1f}" '
            f'height="{BAR_HEIGHT}" fill="{"#c33" if over else "#3a7"}"/>'
        )
        if bar.limit is not None:
            x = LABEL_WIDTH + TRACK_WIDTH * bar.limit / top
            parts.append(
                f'<rect class="limit" x="{x - 1.5:.1f}" y="{y - 3}" width="3" height="{BAR_HEIGHT + 6}" '
                'fill="#222"/>'
            )
        figure = escape(bar.text or f"{bar.value:,.0f}")
        parts.append(f'<text x="{LABEL_WIDTH + TRACK_WIDTH + 8}" y="{y + 15}">{figure}</text>')
    parts.append("</svg>")
    return "".join(parts)


def table_html(t: Table) -> str:
    if not t.rows:
        return f'<h3>{escape(t.title)}</h3><p class="empty" id="{t.id}">{escape(t.empty)}</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    html = f'<table id="{t.id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    if len(t.rows) > LONG_TABLE:
        return f"<details><summary>{escape(t.title)} ({len(t.rows):,})</summary>{html}</details>"
    return f"<h3>{escape(t.title)}</h3>{html}"


def section_html(s: Section) -> str:
    parts = [
        f'<section id="{s.id}"><h2{" class=alarm" if s.alarm else ""}>{escape(s.title)}</h2>',
        f'<p class="source">Source: {escape(s.source)}</p>',
    ]
    if s.notes:
        parts.append("<ul class=notes>" + "".join(f"<li>{escape(n)}</li>" for n in s.notes) + "</ul>")
    parts += [f"<h3>{escape(c.title)}</h3>{chart_svg(c)}" for c in s.charts]
    parts += [table_html(t) for t in s.tables]
    parts.append("</section>")
    return "".join(parts)


def render_html(report: Report) -> str:
    all_sections = sections(report)
    nav = "".join(f'<a href="#{s.id}">{escape(s.title)}</a>' for s in all_sections)
    title = f"SVPN farm report: {report.inventory}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Generated {escape(report.generated_at)} by <code>svpn report</code>.</p><nav>{nav}</nav>"
        + "".join(section_html(s) for s in all_sections)
        + "</body></html>\n"
    )
