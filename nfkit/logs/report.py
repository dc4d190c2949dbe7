"""A :class:`~nfkit.logs.aggregate.Summary` as text (a cron mail), JSON, or one HTML file.

The HTML page is self-contained (inline CSS and an inline SVG chart of packets over time by
origin) and rendered by jinja2 with autoescape on: every string that came from a log line —
prefixes, addresses, MACs, raw evidence lines — is escaped. Templates live in ``templates/report``
of a source checkout or ``nfkit/templates/report`` in the wheel (:func:`templates_dir`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import re
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nfkit.errors import ConfigError
from nfkit.logs import attribution as attr
from nfkit.logs.aggregate import SourceStats, Summary, iso
from nfkit.logs.history import Trend

if TYPE_CHECKING:
    import jinja2

FORMATS = ("text", "json", "html")
#: Colours of the chart, one per origin.
ORIGIN_COLOURS = {
    attr.PEER: "#d62728",
    attr.UPSTREAM: "#1f77b4",
    attr.FORWARDED: "#9467bd",
    attr.UNKNOWN: "#7f7f7f",
    attr.LOCAL: "#2ca02c",
}
_MAX_BARS = 96
_CHART_WIDTH = 760
_CHART_HEIGHT = 180


def templates_dir(override: str | Path | None = None) -> Path:
    """The templates folder: ``override``, ``$NFKIT_TEMPLATES``, the checkout's, or the wheel's."""
    package = Path(__file__).resolve().parent.parent
    candidates = [Path(p) for p in (override, os.environ.get("NFKIT_TEMPLATES")) if p]
    candidates += [package.parent / "templates", package / "templates"]
    for candidate in candidates:
        if (candidate / "report").is_dir():
            return candidate
    raise ConfigError(f"report templates not found (looked in {', '.join(map(str, candidates))})")


def _environment(templates: str | Path | None) -> jinja2.Environment:
    import jinja2  # only the HTML report needs it: text and JSON runs start faster

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir(templates))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(
    summary: Summary,
    fmt: str,
    trend: Trend | None = None,
    title: str = "nfkit firewall summary",
    templates: str | Path | None = None,
) -> str:
    """Render ``summary`` (and optionally a trend over stored runs) as text, JSON or HTML."""
    return "".join(render_chunks(summary, fmt, trend, title, templates))


def render_chunks(
    summary: Summary,
    fmt: str,
    trend: Trend | None = None,
    title: str = "nfkit firewall summary",
    templates: str | Path | None = None,
) -> Iterator[str]:
    """:func:`render` in pieces to write one after the other: JSON is made one source at a
    time, so a large summary is never held as one text (text and HTML come in one piece)."""
    if fmt == "json":
        first = None
        if trend is not None:
            first = {"days": trend.days, "runs": trend.runs, "per_day": trend.per_day}
        yield from summary.json_chunks(first)
        yield "\n"
        return
    yield _render_one(summary, fmt, trend, title, templates)


def _render_one(
    summary: Summary,
    fmt: str,
    trend: Trend | None,
    title: str,
    templates: str | Path | None,
) -> str:
    if fmt == "text":
        return render_text(summary, trend, title)
    if fmt == "html":
        return render_html(summary, trend, title, templates)
    raise ConfigError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")


# -- text ---------------------------------------------------------------------------------------
def _short(time: str | None) -> str:
    return time[:19].replace("T", " ") if time else "-"


def _ports(ports: dict[str, int], limit: int = 5) -> str:
    return ", ".join(f"{p} ({n})" if n > 1 else p for p, n in list(ports.items())[:limit]) or "-"


_WRAPPER = re.compile(r"^.*? kernel: (?:\[[^\]]*\] ?)*")


def _evidence(line: str, width: int = 150) -> str:
    """The kernel message of a raw line (syslog wrapper dropped), cut to ``width``."""
    message = _WRAPPER.sub("", line.strip(), count=1)
    return message if len(message) <= width else message[: width - 3] + "..."


def _wrap(text: str, indent: str = "    ") -> list[str]:
    return textwrap.wrap(text, 96, initial_indent=indent, subsequent_indent=indent)


def _peers(ranked: list[tuple[str, SourceStats]]) -> int:
    """How many sources at the head of :meth:`Summary.sorted_sources` order are peers (they
    come first)."""
    return sum(1 for _ in itertools.takewhile(lambda item: item[1].origin == attr.PEER, ranked))


def render_text(summary: Summary, trend: Trend | None = None, title: str = "") -> str:
    """Plain text that fits a cron mail: findings first, then the tables, capped in length."""
    # Only the sources shown are turned into dicts: a summary may hold 100,000 of them.
    # Peers in full (in Summary.sorted_sources order), of the others only the 15 busiest: no
    # sort of every source.
    order = {origin: i for i, origin in enumerate(attr.ORIGINS)}
    peers_ranked = sorted(
        ((a, stats) for a, stats in summary.sources.items() if stats.origin == attr.PEER),
        key=lambda item: (-item[1].packets, item[0]),
    )
    data = summary.to_dict(complete=False, ranked=peers_ranked)
    rest = heapq.nsmallest(
        15,
        ((a, stats) for a, stats in summary.sources.items() if stats.origin != attr.PEER),
        key=lambda item: (-item[1].packets, order.get(item[1].origin, 99), item[0]),
    )
    others = [summary.source_entry(a, stats, complete=False) for a, stats in rest]
    out: list[str] = []
    first, last = summary.period()
    period = f", {_short(iso(first))} .. {_short(iso(last))} UTC" if first is not None else ""
    out.append(f"{title or 'nfkit firewall summary'}")
    out.append(
        f"{data['records']} packets logged in {data['lines']} lines "
        f"({data['unparsed']} other lines){period}"
    )
    if data["by_origin"]:
        out.append("By origin: " + ", ".join(f"{o} {n}" for o, n in data["by_origin"].items()))
    if summary.dropped:
        out += _wrap(
            f"APPROXIMATE: more sources than max_sources ({summary.config.max_sources}); the "
            f"busiest {len(summary.sources)} are listed, and none of the others sent more than "
            f"{summary.floor} packets. Counts marked ~ may be short by up to that many.",
            indent="",
        )
    if trend is not None:
        out += ["", f"LAST {trend.days} DAYS ({trend.runs} runs)"]
        out.append(
            f"  {'day':10}  {'runs':>4}  {'packets':>8}  "
            + "  ".join(f"{o:>9}" for o in attr.ORIGINS)
        )
        for day, row in sorted(trend.per_day.items()):
            out.append(
                f"  {day:10}  {row['runs']:>4}  {row['records']:>8}  "
                + "  ".join(f"{row.get(o, 0):>9}" for o in attr.ORIGINS)
            )
        if trend.unmerged:
            out.append(f"  ({trend.unmerged} runs with another configuration not merged)")
    for rec in data["recommendations"]:
        out += ["", f"!! {rec['severity'].upper()} [{rec['code']}]"]
        out += _wrap(rec["message"])
        for line in rec.get("evidence", [])[:3]:
            out.append(f"      {_evidence(line)}")
    peers = [s for s in data["sources"] if s["origin"] == attr.PEER]
    if peers:
        out += ["", "PEERS ON THE LOCAL SEGMENT (the upstream firewall cannot stop these)"]
        out.append(f"  {'address':39}  {'mac':17}  {'packets':>7}  last seen            ports")
        for s in peers[:20]:
            out.append(
                f"  {s['address']:39}  {s['mac'] or '-':17}  {s['packets']:>7}  "
                f"{_short(s['last_seen']):19}  {_ports(s['ports'])}"
            )
    if data["scans"]:
        out += ["", "SCANS (danger level 1-5)"]
        for scan in data["scans"][:20]:
            what = "ports on" if scan["kind"] == "vertical" else "hosts for"
            mac = f" [{scan['mac']}]" if scan["mac"] else ""
            out.append(
                f"  L{scan['level']} {scan['kind']:10} {scan['source']}{mac} ({scan['origin']}): "
                f"{scan['distinct']} {what} {scan['target']} within "
                f"{scan['window_seconds'] // 60} min from {_short(scan['window_start'])}"
            )
    if others:
        out += ["", "TOP SOURCES"]
        out.append(f"  {'address':39}  {'origin':9}  {'packets':>7}  last seen            ports")
        for s in others[:15]:
            packets = f"~{s['packets']}" if s.get("error") else str(s["packets"])
            out.append(
                f"  {s['address']:39}  {s['origin']:9}  {packets:>7}  "
                f"{_short(s['last_seen']):19}  {_ports(s['ports'])}"
            )
        not_shown = len(summary.sources) - len(peers_ranked) - len(rest)
        if not_shown > 0:
            out.append(f"  ... and {not_shown} more sources")
    if data["upstream"]:
        out += ["", "THROUGH THE GATEWAY (what the upstream firewall let through, by port)"]
        through = sorted(data["upstream"].items(), key=lambda kv: -sum(kv[1].values()))
        for port, verdicts in through[:15]:
            detail = ", ".join(f"{v} {n}" for v, n in verdicts.items())
            out.append(f"  {port:16} {sum(verdicts.values()):>7}  ({detail})")
    if data["ports"]:
        out += ["", "TOP DESTINATION PORTS"]
        for row in data["ports"][:10]:
            out.append(
                f"  {row['port']:16} {row['packets']:>7} packets  {row['sources']:>5} sources"
            )
    if data["prefixes"]:
        out += ["", "LOG PREFIXES"]
        for prefix, n in list(data["prefixes"].items())[:10]:
            out.append(f"  {prefix or '(none)':30} {n:>7}")
    return _printable("\n".join(out)) + "\n"


#: C0 controls except newline and tab, DEL, and C1 controls (ESC sequences, BEL, CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Show control characters from log lines as ``\\x1b``: the text report lands on terminals
    and in mail, and anyone who can write to the kernel log or syslog controls those bytes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# -- HTML ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Bar:
    x: float
    width: float
    label: str
    segments: list[dict[str, Any]]


def stacked_segments(counts: Mapping[str, int], peak: int, height: float) -> list[dict[str, Any]]:
    """The SVG rectangles of one stacked bar ``height`` high for ``peak`` packets: one per
    origin with packets in ``counts``, stacked upwards from the bottom in reverse
    :data:`~nfkit.logs.attribution.ORIGINS` order (peers on top)."""
    segments: list[dict[str, Any]] = []
    y = float(height)
    for origin in reversed(attr.ORIGINS):
        n = counts.get(origin, 0)
        if not n or not peak:
            continue
        part = height * n / peak
        y -= part
        segments.append(
            {
                "origin": origin,
                "count": n,
                "y": round(y, 2),
                "height": round(part, 2),
                "colour": ORIGIN_COLOURS[origin],
            }
        )
    return segments


def chart(summary: Summary) -> dict[str, Any]:
    """Stacked bars of packets over time by origin, as coordinates for the SVG template."""
    slot_seconds = summary.config.slot_seconds
    slots = {s: o for s, o in summary.timeline.items() if s > 0}  # slot 0: no timestamp
    if not slots:
        return {"bars": [], "width": _CHART_WIDTH, "height": _CHART_HEIGHT, "legend": []}
    first, last = min(slots), max(slots)
    per_bar = max(1, math.ceil((last - first + 1) / _MAX_BARS))
    buckets: dict[int, dict[str, int]] = {}
    for slot, origins in slots.items():
        bucket = buckets.setdefault((slot - first) // per_bar, {})
        for origin, n in origins.items():
            bucket[origin] = bucket.get(origin, 0) + n
    count = (last - first) // per_bar + 1
    peak = max(sum(b.values()) for b in buckets.values())
    width = _CHART_WIDTH / count
    bars = []
    for index, bucket in sorted(buckets.items()):
        segments = stacked_segments(bucket, peak, _CHART_HEIGHT)
        start = (first + index * per_bar) * slot_seconds
        bars.append(
            _Bar(
                x=round(index * width, 2),
                width=round(max(width - 1, 1), 2),
                label=_short(iso(start)),
                segments=segments,
            )
        )
    return {
        "bars": bars,
        "width": _CHART_WIDTH,
        "height": _CHART_HEIGHT,
        "peak": peak,
        "start": _short(iso(first * slot_seconds)),
        "end": _short(iso((last + 1) * slot_seconds)),
        "bar_minutes": per_bar * slot_seconds // 60,
        "legend": [(o, ORIGIN_COLOURS[o]) for o in attr.ORIGINS if summary.by_origin.get(o)],
    }


def render_html(
    summary: Summary,
    trend: Trend | None = None,
    title: str = "nfkit firewall summary",
    templates: str | Path | None = None,
    template: str = "report/summary.html.j2",
    extra: Mapping[str, Any] | None = None,
) -> str:
    """One self-contained HTML page; log-derived strings are escaped by jinja2 autoescape.

    ``template`` may extend ``report/summary.html.j2`` (block ``fleet``) with ``extra`` values.
    """
    # Peers come first in that order; the page lists at most 200 sources besides them.
    ranked = summary.sorted_sources()
    peers = _peers(ranked)
    data = summary.to_dict(complete=False, ranked=ranked[: max(200, peers)])
    data["source_count"] = len(summary.sources)
    from jinja2 import TemplateNotFound

    try:
        page = _environment(templates).get_template(template)
    except TemplateNotFound as exc:
        raise ConfigError(f"report template {exc.name!r} not found") from None
    return page.render(
        **(extra or {}),
        title=title,
        data=data,
        chart=chart(summary),
        trend=trend,
        origins=attr.ORIGINS,
        colours=ORIGIN_COLOURS,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        short=_short,
    )
