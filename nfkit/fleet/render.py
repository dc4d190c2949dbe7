"""A fleet's summaries as text, JSON or HTML: hosts and correlation first, then the merged whole.

Used by ``nfkit merge`` (and ``nfkit summarize --dask``). The JSON output is the merged
:class:`~nfkit.logs.aggregate.Summary`'s contract plus a ``fleet`` object, so it can be read
back with :meth:`Summary.from_dict` (and merged again: as one host). The HTML page extends
``report/summary.html.j2`` with ``report/fleet.html.j2``; autoescape is on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nfkit.errors import ConfigError
from nfkit.fleet.correlate import Correlation, correlate
from nfkit.fleet.summary import FleetSummary
from nfkit.logs import attribution as attr
from nfkit.logs.aggregate import Summary
from nfkit.logs.report import FORMATS, render_html, render_text

__all__ = ["fleet_dict", "render_fleet"]

_TEXT_ROWS = 20


def _host_rows(fleet: FleetSummary) -> list[dict[str, Any]]:
    rows = []
    for host, summary in sorted(fleet.hosts.items()):
        if not summary.records and fleet.segments.get(host) is None:
            continue  # only unparsed lines: not a host
        codes = [str(rec["code"]) for rec in summary.recommendations()]
        counts = summary.by_origin
        rows.append(
            {
                "host": host,
                "segment": fleet.segments.get(host),
                "lines": summary.lines,
                "records": summary.records,
                "by_origin": {o: counts[o] for o in attr.ORIGINS if o in counts},
                "findings": codes,
            }
        )
    return rows


def fleet_dict(fleet: FleetSummary, correlation: Correlation | None = None) -> dict[str, Any]:
    """The ``fleet`` object of the JSON output: hosts, unmapped hosts, correlation."""
    correlation = correlation or correlate(fleet)
    hosts = _host_rows(fleet)
    return {
        "hosts": hosts,
        "segment_count": len({h["segment"] for h in hosts if h["segment"] is not None}),
        "unmapped_hosts": fleet.unmapped,
        **correlation.to_dict(),
    }


def _fleet_text(data: dict[str, Any]) -> list[str]:
    out = [f"Fleet: {len(data['hosts'])} hosts in {data['segment_count']} segments"]
    if data["unmapped_hosts"]:
        out += ["", "!! HOSTS MISSING FROM THE FLEET FILE (placed in no segment, not guessed)"]
        out += [f"  {host:30} {n:>8} packets" for host, n in data["unmapped_hosts"].items()]
    peers = data["peers_across_hosts"]
    if peers:
        out += ["", "PEERS ATTACKING SEVERAL HOSTS OF ONE SEGMENT (the upstream cannot stop these)"]
        out.append(f"  {'segment':20} {'mac':17} {'hosts':>5} {'lvl':>3} {'packets':>8}  addresses")
        for p in peers[:_TEXT_ROWS]:
            out.append(
                f"  {p['segment']:20} {p['mac']:17} {len(p['hosts']):>5} {p['level'] or '-':>3} "
                f"{p['packets']:>8}  {', '.join(p['addresses'][:4])}"
            )
            out.append(f"      hosts: {', '.join(p['hosts'][:10])}")
    sources = data["sources_across_segments"]
    if sources:
        out += ["", "SOURCES SEEN ACROSS SEGMENTS"]
        out.append(f"  {'address':39} {'segs':>4} {'hosts':>5} {'lvl':>3} {'packets':>8}  segments")
        for s in sources[:_TEXT_ROWS]:
            out.append(
                f"  {s['address']:39} {len(s['segments']):>4} {len(s['hosts']):>5} "
                f"{s['level'] or '-':>3} {s['packets']:>8}  {', '.join(s['segments'][:5])}"
            )
        if len(sources) > _TEXT_ROWS:
            out.append(f"  ... and {len(sources) - _TEXT_ROWS} more")
    out += ["", "HOSTS"]
    out.append(f"  {'host':24} {'segment':20} {'packets':>8} {'peer':>7} {'upstream':>8}  findings")
    for h in data["hosts"]:
        out.append(
            f"  {h['host']:24} {h['segment'] or '(not in fleet file)':20} {h['records']:>8} "
            f"{h['by_origin'].get(attr.PEER, 0):>7} {h['by_origin'].get(attr.UPSTREAM, 0):>8}  "
            f"{', '.join(h['findings']) or '-'}"
        )
    return out


def render_fleet(
    fleet: FleetSummary,
    fmt: str,
    title: str | None = None,
    merged: Summary | None = None,
    templates: str | Path | None = None,
) -> str:
    """Render ``fleet`` (and its merged summary, computed if not given) as text, JSON or HTML."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    merged = merged if merged is not None else fleet.merged()
    data = fleet_dict(fleet)
    title = title or f"nfkit fleet summary, {len(data['hosts'])} hosts"
    if fmt == "json":
        return json.dumps({**merged.to_dict(), "fleet": data}, separators=(",", ":")) + "\n"
    if fmt == "text":
        head = [title, *_fleet_text(data), "", ""]
        return "\n".join(head) + render_text(merged, title="ALL HOSTS MERGED")
    return render_html(
        merged, None, title, templates, template="report/fleet.html.j2", extra={"fleet": data}
    )
