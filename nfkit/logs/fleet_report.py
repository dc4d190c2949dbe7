"""A :class:`~nfkit.logs.fleet_trends.Report` as text (a cron mail), JSON, or one HTML page.

Segments and hosts come first — hostile neighbours, what each upstream let through, hosts with
window-tracking or PMTUD trouble, packets per day — then the fleet's merged summary as
:mod:`nfkit.logs.report` renders it. The HTML page extends ``report/summary.html.j2`` (block
``fleet``, template ``report/history.html.j2``), draws its charts as inline SVG whose
coordinates are computed here, and is rendered with autoescape on: host names, segment names,
addresses, MACs and prefixes all came from logs or from the database and are escaped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nfkit.errors import ConfigError
from nfkit.logs import attribution as attr
from nfkit.logs.aggregate import Summary, iso
from nfkit.logs.fleet_trends import Group, Report
from nfkit.logs.report import FORMATS, ORIGIN_COLOURS, render_html, render_text, stacked_segments

_SPARK = "▁▂▃▄▅▆▇█"
_DAY_CHART_WIDTH = 760
_DAY_CHART_HEIGHT = 160
_SPARK_WIDTH = 120
_SPARK_HEIGHT = 24


def render_report(
    report: Report, fmt: str, title: str | None = None, templates: str | Path | None = None
) -> str:
    """Render ``report`` as ``text``, ``json`` or ``html``."""
    title = title or f"nfkit fleet report, last {report.days} days"
    summary = report.overall.merged or Summary()
    if fmt == "json":
        return json.dumps({**summary.to_dict(), **report.to_dict()}, separators=(",", ":")) + "\n"
    if fmt == "text":
        return render_fleet_text(report, title)
    if fmt == "html":
        extra = {
            "fleet": report,
            "days_chart": days_chart(report),
            "segment_sparks": {g.name: spark_bars(g.series) for g in report.segments},
            "host_sparks": {g.name: spark_bars(g.series) for g in report.hosts},
            "change": change_text,
            "dates": report.dates,
            "host_last": {g.name: _minute(g.last_run) for g in report.hosts},
        }
        return render_html(
            summary,
            report.overall,
            title,
            templates,
            template="report/history.html.j2",
            extra=extra,
        )
    raise ConfigError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")


# -- text ---------------------------------------------------------------------------------------
def sparkline(series: list[int]) -> str:
    """One character per day: ``.`` for none, then eight heights relative to the peak."""
    peak = max(series, default=0)
    if peak <= 0:
        return "." * len(series)
    return "".join("." if n <= 0 else _SPARK[min(7, (n * 8 - 1) // peak)] for n in series)


def change_text(change: float | None) -> str:
    """``+35%``, ``-10%``, ``new`` (nothing before the last day)."""
    if change is None:
        return "new"
    return f"{change * 100:+.0f}%"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _findings(group: Group) -> str:
    return ", ".join(sorted(group.findings)) or "-"


def render_fleet_text(report: Report, title: str) -> str:
    """Segments, hosts, then the fleet-wide summary (findings first), for a cron mail."""
    out = [
        title,
        f"{report.dates[0]} .. {report.dates[-1]} UTC: {len(report.segments)} segments, "
        f"{len(report.hosts)} hosts, {report.overall.runs} runs, "
        f"{sum(g.packets for g in report.hosts)} packets",
    ]
    if report.unlisted_hosts:
        out.append("Hosts missing from the fleet file: " + ", ".join(report.unlisted_hosts[:20]))
    if report.segments:
        out += ["", f"SEGMENTS (packets per day over {report.days} days)"]
        out.append(
            f"  {'segment':28} {'hosts':>5} {'runs':>5} {'packets':>9} {'peers':>5}  "
            f"{'per day':{max(7, report.days)}}  change"
        )
        for seg in report.segments:
            out.append(
                f"  {_cut(seg.name, 28):28} {len(seg.hosts):>5} {seg.trend.runs:>5} "
                f"{seg.packets:>9} {len(seg.peers):>5}  "
                f"{sparkline(seg.series):{max(7, report.days)}}  {change_text(seg.change)}"
            )
            for peer in seg.peers[:5]:
                mac = f" [{peer['mac']}]" if peer["mac"] else ""
                more = ", ..." if len(peer["hosts"]) > 5 else ""
                out.append(
                    f"      hostile neighbour {peer['address']}{mac}: {peer['packets']} packets "
                    f"to {len(peer['hosts'])} hosts ({', '.join(peer['hosts'][:5])}{more})"
                )
            if seg.upstream:
                ports = ", ".join(
                    f"{port} {sum(v.values())}" for port, v in list(seg.upstream.items())[:6]
                )
                out.append(f"      through the gateway: {ports}")
            for code in sorted(seg.findings):
                names = [
                    h.name for h in report.hosts if h.segment == seg.name and code in h.findings
                ]
                more = f" and {len(names) - 8} more" if len(names) > 8 else ""
                out.append(f"      {code} on {len(names)} hosts: {', '.join(names[:8])}{more}")
    if report.across_segments:
        out += ["", "SOURCES SEEN ACROSS SEGMENTS"]
        for src in report.across_segments[:15]:
            level = f" L{src['level']}" if src.get("level") else ""
            out.append(
                f"  {src['address']:39} {len(src['segments']):>3} segments {len(src['hosts']):>4} "
                f"hosts {src['packets']:>8} packets{level}  ({', '.join(src['segments'][:4])})"
            )
    if report.hosts:
        out += ["", "HOSTS"]
        out.append(
            f"  {'host':20} {'segment':20} {'runs':>4} {'last run':16} {'packets':>8} "
            f"{'peer':>6} {'upstream':>8}  {'per day':{max(7, report.days)}}  "
            f"{'change':>6}  findings"
        )
        for host in report.hosts:
            origins = host.by_origin
            last = _minute(host.last_run)
            out.append(
                f"  {_cut(host.name, 20):20} {_cut(host.segment, 20):20} {host.trend.runs:>4} "
                f"{last:16} {host.packets:>8} {origins.get(attr.PEER, 0):>6} "
                f"{origins.get(attr.UPSTREAM, 0):>8}  "
                f"{sparkline(host.series):{max(7, report.days)}}  "
                f"{change_text(host.change):>6}  {_findings(host)}"
            )
    summary = report.overall.merged or Summary()
    out += ["", render_text(summary, report.overall, "ALL HOSTS MERGED").rstrip("\n")]
    return "\n".join(out) + "\n"


def _minute(epoch: float | None) -> str:
    return (iso(epoch) or "-")[:16].replace("T", " ")


# -- HTML charts --------------------------------------------------------------------------------
def days_chart(report: Report) -> dict[str, Any]:
    """Stacked bars of packets per day by origin over the whole fleet (SVG coordinates)."""
    count = len(report.dates)
    rows = [report.overall.per_day.get(day, {}) for day in report.dates]
    peak = max((sum(row.get(o, 0) for o in attr.ORIGINS) for row in rows), default=0)
    width = _DAY_CHART_WIDTH / max(count, 1)
    bars = []
    for index, (day, row) in enumerate(zip(report.dates, rows, strict=True)):
        segments = stacked_segments(row, peak, _DAY_CHART_HEIGHT)
        bars.append(
            {
                "x": round(index * width, 2),
                "width": round(max(width - 2, 1), 2),
                "centre": round(index * width + width / 2, 2),
                "day": day,
                "label": day[5:],
                "runs": row.get("runs", 0),
                "segments": segments,
            }
        )
    return {
        "bars": bars,
        "width": _DAY_CHART_WIDTH,
        "height": _DAY_CHART_HEIGHT,
        "peak": peak,
        "legend": [(o, ORIGIN_COLOURS[o]) for o in attr.ORIGINS],
    }


def spark_bars(series: list[int]) -> dict[str, Any]:
    """A small bar chart of packets per day (SVG coordinates)."""
    peak = max(series, default=0)
    width = _SPARK_WIDTH / max(len(series), 1)
    bars = []
    for index, n in enumerate(series):
        height = (_SPARK_HEIGHT - 2) * n / peak if peak else 0.0
        height = max(height, 1.0) if n else 0.0
        bars.append(
            {
                "x": round(index * width, 2),
                "y": round(_SPARK_HEIGHT - height, 2),
                "width": round(max(width - 1, 1), 2),
                "height": round(height, 2),
                "count": n,
            }
        )
    return {"bars": bars, "width": _SPARK_WIDTH, "height": _SPARK_HEIGHT}


__all__ = [
    "change_text",
    "days_chart",
    "render_fleet_text",
    "render_report",
    "spark_bars",
    "sparkline",
]
