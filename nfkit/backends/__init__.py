"""Backends: one class per netfilter front end, all reading the same IR.

``get_backend("nftables")`` / ``get_backend("iptables")`` returns the class; each declares what it
can express and raises :class:`~nfkit.errors.UnsupportedFeatureError` for the rest.
"""

from __future__ import annotations

from nfkit.backends.base import Backend, CompiledRuleset, IptablesJump, SysctlSetting
from nfkit.errors import ConfigError

__all__ = ["BACKENDS", "Backend", "CompiledRuleset", "IptablesJump", "SysctlSetting",
           "get_backend"]

BACKENDS = ("nftables", "iptables")


def get_backend(name: str) -> type[Backend]:
    """Return the backend class called ``name``."""
    if name == "nftables":
        from nfkit.backends.nftables import NftablesBackend

        return NftablesBackend
    if name == "iptables":
        from nfkit.backends.iptables import IptablesBackend

        return IptablesBackend
    raise ConfigError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
