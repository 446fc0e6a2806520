"""The report as Markdown (report.md): the same sections as the HTML page, charts as their figures. Pure."""

from __future__ import annotations

from svpn.report.model import Report
from svpn.report.sections import Section, Table, sections


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split()) or " "


def table(t: Table) -> list[str]:
    lines = [f"### {t.title}", ""]
    if not t.rows:
        return [*lines, f"_{t.empty}_", ""]
    lines.append("| " + " | ".join(_cell(c) for c in t.columns) + " |")
    lines.append("|" + "---|" * len(t.columns))
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    return [*lines, ""]


def section(s: Section) -> list[str]:
    lines = [f"## {s.title}{' ⚠' if s.alarm else ''}", "", f"_Source: {s.source}_", ""]
    lines += [f"- {note}" for note in s.notes]
    if s.notes:
        lines.append("")
    for chart in s.charts:
        lines += [f"### {chart.title}", ""]
        lines += [f"- {bar.label}: {bar.text or f'{bar.value:,.0f}'}" for bar in chart.bars]
        lines.append("")
    for t in s.tables:
        lines += table(t)
    return lines


def render_markdown(report: Report) -> str:
    lines = [
        f"# SVPN farm report: {report.inventory}",
        "",
        f"Generated {report.generated_at} by `svpn report`.",
        "",
    ]
    for s in sections(report):
        lines += section(s)
    return "\n".join(lines).rstrip() + "\n"
