"""The log-prefix scheme shared by the rule compiler and the log summariser.

A rule compiled by nfkit logs with the prefix ``TAG:CHAIN:VERDICT[:LABEL] `` (trailing space,
because the kernel glues the prefix straight onto ``IN=``), for example::

    nfkit:input:drop:invalid IN=eth0 OUT= MAC=...

* ``TAG``     ``nfkit`` unless the policy sets another (tests use a per-run tag);
* ``CHAIN``   the policy chain (``input``, ``forward``, ``output`` or a user chain);
* ``VERDICT`` what the rule then does: ``accept``, ``drop``, ``reject`` or ``log`` (log only);
* ``LABEL``   optional: ``invalid`` for the conntrack-INVALID rule, ``policy`` for the
  chain's default policy, ``limit`` for rate/connection-limit overflow, or the rule's name.

The whole prefix is at most 29 characters, iptables' ``--log-prefix`` limit, so one policy gives
the same prefixes on both backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_TAG = "nfkit"
VERDICTS = frozenset({"accept", "drop", "reject", "log"})
#: Labels with a meaning to the summariser.
LABEL_INVALID = "invalid"
LABEL_POLICY = "policy"
LABEL_LIMIT = "limit"
#: iptables' LOG target accepts at most 29 characters of prefix.
MAX_PREFIX_LENGTH = 29

_PART = re.compile(r"[A-Za-z0-9_.-]+\Z")


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    """What an nfkit log prefix says about the rule that logged a packet."""

    tag: str
    chain: str
    verdict: str
    label: str | None = None

    @property
    def is_invalid_drop(self) -> bool:
        """True for the rule that drops conntrack-INVALID packets."""
        return self.label == LABEL_INVALID and self.verdict in {"drop", "reject"}

    @property
    def is_drop(self) -> bool:
        """True when the logged packet was then dropped or rejected."""
        return self.verdict in {"drop", "reject"}


def format_prefix(
    chain: str, verdict: str, label: str | None = None, tag: str = DEFAULT_TAG
) -> str:
    """Return the log prefix for a rule; raise ``ValueError`` if it is malformed or too long."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r} (expected one of {sorted(VERDICTS)})")
    parts = [tag, chain, verdict] + ([label] if label else [])
    for part in parts:
        if not _PART.match(part):
            raise ValueError(f"log prefix part {part!r} may hold only letters, digits, _ . -")
    prefix = ":".join(parts) + " "
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"log prefix {prefix.strip()!r} is {len(prefix)} characters; "
            f"at most {MAX_PREFIX_LENGTH} fit (iptables limit)"
        )
    return prefix


def parse_prefix(prefix: str | None, tags: frozenset[str] | None = None) -> PrefixInfo | None:
    """Decode a logged prefix written by nfkit; None when it is not one of nfkit's.

    ``tags`` limits which tags are accepted (default: :data:`DEFAULT_TAG` only).
    """
    if not prefix:
        return None
    parts = prefix.strip().rstrip(":").split(":")
    if len(parts) not in (3, 4):
        return None
    accepted = tags if tags is not None else frozenset({DEFAULT_TAG})
    if parts[0] not in accepted or parts[2] not in VERDICTS:
        return None
    label = parts[3] if len(parts) == 4 and parts[3] else None
    return PrefixInfo(tag=parts[0], chain=parts[1], verdict=parts[2], label=label)
