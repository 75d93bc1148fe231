"""Which interface each ring address of a hostfile is on, from the host's own `genai env --json`
("network": runtime/network.py), and Metal's wired limit per host against the plan.

Pure functions over parsed data, so they are tested on recorded `ifconfig` / `ip -j addr` text:

    ring_findings(host, network)      DST030 ring IPs on a LAN while a Thunderbolt link is up;
                                      DST031 a ring IP that is on none of the host's interfaces
    thunderbolt(network)              the host's Thunderbolt interfaces that are up
    wired_findings(plan, limits)      DST033 a rank's weights above 0.9 x its host's wired limit
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from genai_common.distributed import checks
from genai_common.distributed.hostfile import Host
from genai_common.findings import Finding
from genai_common.model.values import gib

WIRED_SHARE = 0.9  # mlx-lm's generate.wired_limit(): warns above 0.9 x the recommended size


def _owner(ip: str, network: dict[str, Any]) -> dict[str, Any] | None:
    """The interface that holds ip (exact address; any loopback address on a loopback one)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for iface in network.get("interfaces") or []:
        for cidr in iface.get("ipv4") or []:
            try:
                have = ipaddress.ip_interface(cidr)
            except ValueError:
                continue
            if have.ip == addr or (addr.is_loopback and addr in have.network):
                return iface
    return None


def thunderbolt(network: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The Thunderbolt interfaces (bridge or port) that are up, bridges first."""
    found = [
        i for i in (network or {}).get("interfaces") or [] if i.get("thunderbolt") and i.get("up")
    ]
    return sorted(found, key=lambda i: (not i.get("members"), i["name"]))


def _describe(iface: dict[str, Any]) -> str:
    port = f" ({iface['port']})" if iface.get("port") else ""
    members = f" [members {', '.join(iface['members'])}]" if iface.get("members") else ""
    return f"{iface['name']}{port}{members}"


def ring_findings(
    host: Host, network: dict[str, Any] | None, path: str | None = None
) -> list[Finding]:
    """DST030 / DST031 for one host's ring IPs; nothing when its interfaces are unknown."""
    if not network or not network.get("interfaces") or not host.ips:
        return []
    found: list[Finding] = []
    tb = thunderbolt(network)
    tb_names = {i["name"] for i in tb} | {m for i in tb for m in i.get("members") or []}
    tb_ips = [cidr.split("/")[0] for i in tb for cidr in i.get("ipv4") or []]
    for ip in host.ips:
        iface = _owner(ip, network)
        if iface is None:
            found.append(checks.ip_not_on_host(host.ssh, ip, path))
            continue
        if not tb or iface["name"] in tb_names or ipaddress.ip_address(ip).is_loopback:
            continue
        where = ", ".join(_describe(i) for i in tb)
        if tb_ips:
            use = (
                f"use its Thunderbolt address{'es' if len(tb_ips) > 1 else ''} {', '.join(tb_ips)}"
            )
        else:
            use = (
                "it has no IPv4 address there yet: `mlx.distributed_config --backend ring "
                "--over thunderbolt` assigns them"
            )
        found.append(checks.lan_not_thunderbolt(host.ssh, ip, _describe(iface), where, use, path))
    return found


def limits(env: dict[str, Any]) -> dict[str, Any]:
    """The host's wired-memory facts: the sysctl (macOS) and Metal's recommended working set."""
    memory = env.get("memory") or {}
    device = ((env.get("frameworks") or {}).get("mlx") or {}).get("device") or {}
    rec = device.get("max_recommended_working_set_size")
    system = (env.get("os") or {}).get("system")
    out: dict[str, Any] = {
        "wired_limit_mb": memory.get("wired_limit_mb"),
        "recommended_working_set": rec if isinstance(rec, int) and rec > 0 else None,
        "total": memory.get("total"),
    }
    if system != "Darwin":
        out["note"] = f"no Metal wired limit on {system or 'this system'} (iogpu is macOS only)"
    return out


def wired_findings(
    plan: Any, per_rank: list[dict[str, Any]], skip: set[int] | frozenset[int] = frozenset()
) -> list[Finding]:
    """DST033 for each rank whose weights pass 0.9 x the wired limit its host gives it
    (per_rank[i]: limits() of rank i's host, with "share": ranks on that host); ranks in skip
    (already over their whole budget: DST012) are left out."""
    out = []
    for r in plan.ranks:
        if r.rank in skip:
            continue
        lim = per_rank[r.rank % len(per_rank)]
        rec = lim.get("recommended_working_set")
        if not rec:
            continue
        share = max(1, int(lim.get("share", 1)))
        allowed = rec // share
        if r.weights <= WIRED_SHARE * allowed:
            continue
        want_mb = math.ceil(r.weights * share / WIRED_SHARE / 2**20 / 1024) * 1024
        total = lim.get("total")
        room = f" of {gib(total)} RAM" if isinstance(total, int) else ""
        out.append(
            checks.wired(r.rank, r.weights, allowed, lim.get("wired_limit_mb"), want_mb, room)
        )
    return out
