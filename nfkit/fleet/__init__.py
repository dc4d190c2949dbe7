"""Fleet scale: many hosts' logs summarised on Dask, per-host segments, cross-host correlation.

* :func:`summarize_on_dask` / :func:`summarize_fleet_on_dask` — partition the input files
  (:mod:`~nfkit.fleet.partition`), summarise the partitions on a ``distributed`` cluster with the
  single-process code, merge the partial summaries: the result equals a single-process run;
* :func:`load_fleet` — the fleet file: host name -> segment and gateway MAC(s);
* :func:`summarize_by_host` — the same, in this process, one summary per host;
* :func:`correlate` — peers attacking several hosts of a segment, sources seen across segments;
* :func:`render_fleet` — text / JSON / HTML, as ``nfkit merge`` prints it.

``distributed`` is needed only by the Dask functions: ``pip install 'nfkit[fleet]'``.
"""

from __future__ import annotations

from nfkit.fleet.correlate import Correlation, PeerAcrossHosts, SourceAcrossSegments, correlate
from nfkit.fleet.dask import DaskError, summarize_fleet_on_dask, summarize_on_dask
from nfkit.fleet.fleetfile import Fleet, FleetHost
from nfkit.fleet.fleetfile import from_toml as load_fleet
from nfkit.fleet.partition import Partition, plan_partitions, read_partition
from nfkit.fleet.render import render_fleet
from nfkit.fleet.summary import FleetSummary, combine, merge_summaries, summarize_by_host

__all__ = [
    "Correlation",
    "DaskError",
    "Fleet",
    "FleetHost",
    "FleetSummary",
    "Partition",
    "PeerAcrossHosts",
    "SourceAcrossSegments",
    "combine",
    "correlate",
    "load_fleet",
    "merge_summaries",
    "plan_partitions",
    "read_partition",
    "render_fleet",
    "summarize_by_host",
    "summarize_fleet_on_dask",
    "summarize_on_dask",
]
