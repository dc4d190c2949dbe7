"""``nfkit doctor`` checks on rulesets the kernel really listed (``nft -j list ruleset``).

The JSON fixtures in ``tests/data/doctor`` were made by loading the ``.nft`` file beside each into
a throwaway namespace and listing it; ``ufw-like`` was made with iptables-nft (its matches are
opaque ``xt`` objects in JSON, so the ``iptables-save`` text beside it is parsed as well).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nfkit.cli import main
from nfkit.doctor import (
    Finding,
    Report,
    check_boot_persistence,
    check_ruleset,
    check_segment,
    check_sysctls,
)
from nfkit.nftcheck import PROBES, Ruleset, evaluate_hook, iptables_save_to_rules
from nfkit.sysctl import BE_LIBERAL, TCP_WINDOW_SCALING

DATA = Path(__file__).parent / "data" / "doctor"


def ruleset(name: str) -> Ruleset:
    return Ruleset.from_json(json.loads((DATA / f"{name}.json").read_text()))


def codes(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity == severity}


def pmtud_codes(findings: list[Finding]) -> set[str]:
    return codes(findings) & {
        "pmtud_blackhole",
        "invalid_drop_before_icmp_accept",
        "policy_drop_without_icmp_accept",
        "pmtud_maybe_dropped",
    }


def test_nfkit_own_ruleset_is_healthy() -> None:
    findings = check_ruleset(ruleset("nfkit-own"))
    assert [f for f in findings if f.counts] == []
    assert pmtud_codes(findings) == set()


def test_invalid_drop_before_icmp_accept_is_flagged_for_both_families() -> None:
    findings = check_ruleset(ruleset("invalid-first"), nfkit_table=("inet", "filter"))
    flagged = [f for f in findings if f.code == "invalid_drop_before_icmp_accept"]
    assert {("fragmentation-needed" in f.message, "packet-too-big" in f.message)
            for f in flagged} == {(True, False), (False, True)}
    assert all(f.severity == "error" and "handle" in f.where for f in flagged)
    # Flows conntrack knows are accepted as related, so only the INVALID case is reported.
    assert all("does not know" in f.message for f in flagged)


def test_naive_icmp_drop_is_a_blackhole() -> None:
    findings = check_ruleset(ruleset("naive-icmp-drop"))
    blackholes = [f for f in findings if f.code == "pmtud_blackhole"]
    assert blackholes, findings
    assert any("knows" in f.message and "does not know" not in f.message for f in blackholes)
    assert "meta l4proto" in blackholes[0].message


def test_policy_drop_without_icmp_accept() -> None:
    findings = check_ruleset(ruleset("policy-drop"))
    # Only `ct state established` is accepted: related ICMP errors and unknown ones fall through.
    flagged = [f for f in findings if f.code == "policy_drop_without_icmp_accept"]
    assert flagged and all("ip filter input" in f.where for f in flagged)
    # An ip-family table says nothing about IPv6.
    assert not any("packet-too-big" in f.message for f in flagged)


def test_vmap_in_jumped_chain_and_interface_dependent_drop() -> None:
    findings = check_ruleset(ruleset("vmap-jump"), nfkit_table=("inet", "fw"))
    assert "invalid_drop_before_icmp_accept" in codes(findings)
    maybe = [f for f in findings if f.code == "pmtud_maybe_dropped"]
    assert maybe and "iifname" in maybe[0].message
    assert "log_to_nflog" in codes(findings)


def test_foreign_base_chain_at_same_hook() -> None:
    findings = check_ruleset(ruleset("docker-beside-nfkit"))
    foreign = [f for f in findings if f.code == "foreign_base_chain"]
    assert [(f.where, f.severity) for f in foreign] == [("ip docker forward", "warning")]
    assert "log_without_prefix" in codes(findings)


def test_no_log_rules() -> None:
    findings = check_ruleset(ruleset("nolog"), nfkit_table=("inet", "filter"))
    assert "no_log_rules" in codes(findings, "warning")


def test_iptables_nft_rules_are_read_from_iptables_save() -> None:
    rules = ruleset("ufw-like")
    assert rules.has_xt()
    # Without the iptables-save text the conntrack match is opaque: nothing certain is found.
    assert "invalid_drop_before_icmp_accept" not in codes(check_ruleset(rules))
    rules.replace_xt_tables(
        "ip", iptables_save_to_rules((DATA / "ufw-like.iptables-save").read_text(), "ip")
    )
    rules.replace_xt_tables(
        "ip6", iptables_save_to_rules((DATA / "ufw-like.ip6tables-save").read_text(), "ip6")
    )
    findings = check_ruleset(rules)
    flagged = [f for f in findings if f.code == "invalid_drop_before_icmp_accept"]
    # IPv4: the INVALID drop comes first. IPv6: packet-too-big is accepted before it.
    assert len(flagged) == 1 and "fragmentation-needed" in flagged[0].message
    assert "--ctstate INVALID -j DROP" in flagged[0].message
    assert "log_prefix_not_nfkit" in codes(findings)


def test_legacy_tables_are_checked_too() -> None:
    rules = ruleset("nfkit-own")
    legacy = iptables_save_to_rules(
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p icmp -j DROP\nCOMMIT\n", "ip", legacy=True
    )
    rules.add_legacy("ip", legacy)
    findings = check_ruleset(rules)
    assert any(f.code == "pmtud_blackhole" and "filter (legacy)" in f.where for f in findings)


def test_every_probe_is_accepted_by_nfkit_own_ruleset() -> None:
    rules = ruleset("nfkit-own")
    for probe in PROBES:
        for hook in ("input", "forward"):
            outcomes = evaluate_hook(rules, hook, probe)
            assert [o.verdict for o in outcomes] == ["accept"], (hook, probe)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({BE_LIBERAL: "1", TCP_WINDOW_SCALING: "1"}, set()),
        ({BE_LIBERAL: "0", TCP_WINDOW_SCALING: "1"}, {"be_liberal_off"}),
        ({BE_LIBERAL: None, TCP_WINDOW_SCALING: "1"}, {"conntrack_inactive"}),
        ({BE_LIBERAL: "1", TCP_WINDOW_SCALING: "0"}, {"tcp_window_scaling_off"}),
    ],
)
def test_sysctl_findings(values: dict[str, str | None], expected: set[str]) -> None:
    assert codes(check_sysctls(values)) == expected


def test_boot_persistence(tmp_path: Path) -> None:
    assert codes(check_boot_persistence(tmp_path, "1")) == {"be_liberal_not_persistent"}
    assert check_boot_persistence(tmp_path, "0") == []
    conf = tmp_path / "etc/sysctl.d/90-conntrack.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# be liberal\nnet.netfilter.nf_conntrack_tcp_be_liberal = 1\n")
    found = check_boot_persistence(tmp_path, "1")
    assert codes(found) == {"be_liberal_sysctl_conf"}
    assert found[0].where.endswith("90-conntrack.conf:2")
    assert main(["install-service", "--root", str(tmp_path), "--nfkit", "/bin/nfkit"]) == 0
    assert codes(check_boot_persistence(tmp_path, "1")) == {"boot_policy_missing"}
    policy = tmp_path / "etc/nfkit/policy.nfk"
    policy.parent.mkdir(parents=True)
    policy.write_text("input policy drop {\n}\n")
    assert check_boot_persistence(tmp_path, "1") == []
    (tmp_path / "etc/systemd/system/sysinit.target.wants/nfkit-firewall.service").unlink()
    assert codes(check_boot_persistence(tmp_path, "1")) == {"boot_unit_disabled"}


def test_segment_findings() -> None:
    assert codes(check_segment({"gateway_ips": []})) == {"no_default_gateway"}
    assert codes(check_segment({"gateway_ips": ["192.0.2.1"], "gateway_macs": []})) == {
        "gateway_mac_unknown"
    }
    assert check_segment({"gateway_ips": ["192.0.2.1"], "gateway_macs": ["02:00:00:00:00:01"]}) \
        == []


def test_report_health_and_json() -> None:
    report = Report(netns="x", findings=[Finding("a", "info", "note")])
    assert report.healthy
    report.findings.append(Finding("b", "warning", "bad", "fix it", "here"))
    assert not report.healthy
    data = report.to_json()
    assert data["healthy"] is False and data["findings"][1]["fix"] == "fix it"
    text = report.to_text()
    assert text.index("warning: b") < text.index("info: a")


class _Params:
    def __init__(self, name: str, params: dict[str, list[str]]) -> None:
        self.name = name
        self._params = params

    def get_all_parameters(self) -> dict[str, list[str]]:
        return self._params


class _Rule:
    def __init__(self, protocol: str, matches: list[_Params], target: _Params) -> None:
        self.protocol = protocol
        self.in_interface = None
        self.out_interface = None
        self.src = "0.0.0.0/0.0.0.0"
        self.dst = "0.0.0.0/0.0.0.0"
        self.matches = matches
        self.target = target


class _Chain:
    def __init__(self, name: str, rules: list[_Rule], policy: str | None) -> None:
        self.name = name
        self.rules = rules
        self._policy = policy

    def is_builtin(self) -> bool:
        return self._policy is not None

    def get_policy(self) -> _Params:
        return _Params(self._policy or "-", {})


class _Table:
    def __init__(self, chains: list[_Chain]) -> None:
        self.chains = chains


def test_python_iptables_objects_are_read_like_iptables_save() -> None:
    """The ``legacy`` extra's read-only path, on objects shaped like python-iptables' own."""
    from nfkit.nftcheck import iptc_to_save_text

    table = _Table([
        _Chain("INPUT", [
            _Rule("ip", [_Params("conntrack", {"ctstate": ["INVALID"]})], _Params("DROP", {})),
            _Rule("icmp", [_Params("icmp", {"icmp-type": ["3/4"]})], _Params("ACCEPT", {})),
            _Rule("ip", [], _Params("LOG", {"log-prefix": ['"nfkit:input:drop:policy "']})),
        ], "DROP"),
    ])
    text = iptc_to_save_text({"filter": table})
    assert ":INPUT DROP [0:0]" in text
    assert "-A INPUT -m conntrack --ctstate INVALID -j DROP" in text
    rules = iptables_save_to_rules(text, "ip", legacy=True)
    findings = check_ruleset(rules, nfkit_table=("ip", "filter (legacy)"))
    assert "invalid_drop_before_icmp_accept" in codes(findings)
    assert "log_prefix_not_nfkit" not in codes(findings)


def test_example_unit_is_what_install_service_writes(tmp_path: Path) -> None:
    from nfkit.cli.install_service import render_unit

    example = Path(__file__).parent.parent / "examples/systemd/nfkit-firewall.service"
    assert example.read_text() == render_unit()
    unit = render_unit("/etc/nfkit/my policy.nfk", "iptables", "/opt/nfkit/bin/nfkit")
    assert "Before=network-pre.target" in unit and "After=" in unit
    assert "systemd-sysctl.service" in unit.split("After=", 1)[1].splitlines()[0]
    assert ("ExecStart=/opt/nfkit/bin/nfkit apply --backend iptables "
            "'/etc/nfkit/my policy.nfk'") in unit
    assert main(["install-service", "--root", str(tmp_path), "--policy", "relative.nfk"]) == 2


def test_tag_of_nfkit_own_table_counts_as_nfkit_scheme() -> None:
    def log_rule(table: str, prefix: str) -> dict[str, object]:
        return {"rule": {"family": "inet", "table": table, "chain": "input", "handle": 2,
                         "expr": [{"log": {"prefix": prefix}}]}}

    data = {"nftables": [
        {"table": {"family": "inet", "name": "nfkit"}},
        {"chain": {"family": "inet", "table": "nfkit", "name": "input", "type": "filter",
                   "hook": "input", "prio": 0, "policy": "accept"}},
        log_rule("nfkit", "web1:input:drop:policy "),
        {"table": {"family": "inet", "name": "other"}},
        {"chain": {"family": "inet", "table": "other", "name": "input"}},
        log_rule("other", "web2:input:drop:policy "),
    ]}
    findings = check_ruleset(Ruleset.from_json(data))
    foreign = [f for f in findings if f.code == "log_prefix_not_nfkit"]
    assert [f.where for f in foreign] == ["inet other input handle 2"]
