"""This machine's network interfaces, for `genai env --json` (issue 13: which addresses a ring
hostfile should use). Pure parsers over the text the system tools print, and one capture.

    parse_ifconfig(text)           macOS / BSD `ifconfig` (bridge members, inet, status)
    parse_hardware_ports(text)     macOS `networksetup -listallhardwareports` (device -> port)
    parse_ip_json(text)            Linux `ip -j addr` (iproute2's JSON; `master` names a bridge)
    interfaces(parsed, ports)      [{"name", "ipv4": ["a.b.c.d/len"], "up", "members",
                                     "port", "thunderbolt"}]
    capture()                      the above for this machine, best effort, bounded in time

Thunderbolt is read as mlx.distributed_config reads it on macOS: the device of a hardware port
named "Thunderbolt N" or "Thunderbolt Bridge" (networksetup); a bridge whose members are
Thunderbolt ports is one too. On Linux the thunderbolt-net driver names its interfaces
`thunderbolt<N>`; a bridge with such a member counts as well.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

_HEADER = re.compile(r"^(\S+?): flags=\w+<([^>]*)>")
_INET = re.compile(
    r"^\s+inet (\d+\.\d+\.\d+\.\d+)(?: --> \S+)?\s+netmask\s+(0x[0-9a-fA-F]+|[\d.]+)"
)
_MEMBER = re.compile(r"^\s+member: (\S+)")
_STATUS = re.compile(r"^\s+status: (\w+)")


def _prefix(netmask: str) -> int:
    value = int(netmask, 16) if netmask.startswith("0x") else _dotted(netmask)
    return bin(value).count("1")


def _dotted(mask: str) -> int:
    out = 0
    for part in mask.split("."):
        out = out * 256 + int(part)
    return out


def parse_ifconfig(text: str) -> list[dict[str, Any]]:
    """Interfaces from `ifconfig` (macOS layout): name, flags, ipv4 ["a.b.c.d/len"], members
    (a bridge's `member:` lines), status ("active" / "inactive" / None)."""
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            cur = {
                "name": m.group(1),
                "flags": [f for f in m.group(2).split(",") if f],
                "ipv4": [],
                "members": [],
                "status": None,
            }
            out.append(cur)
            continue
        if cur is None:
            continue
        if m := _INET.match(line):
            cur["ipv4"].append(f"{m.group(1)}/{_prefix(m.group(2))}")
        elif m := _MEMBER.match(line):
            cur["members"].append(m.group(1))
        elif m := _STATUS.match(line):
            cur["status"] = m.group(1)
    return out


def parse_hardware_ports(text: str) -> dict[str, str]:
    """{device: hardware port name} from `networksetup -listallhardwareports`."""
    ports: dict[str, str] = {}
    port = None
    for line in text.splitlines():
        if line.startswith("Hardware Port:"):
            port = line.split(":", 1)[1].strip()
        elif line.startswith("Device:") and port is not None:
            ports[line.split(":", 1)[1].strip()] = port
            port = None
    return ports


def parse_ip_json(text: str) -> list[dict[str, Any]]:
    """Interfaces from Linux `ip -j addr` in the parse_ifconfig shape (members from `master`)."""
    data = json.loads(text or "[]")
    out = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or "ifname" not in item:
            continue
        ipv4 = [
            f"{a['local']}/{a.get('prefixlen', 32)}"
            for a in item.get("addr_info") or []
            if a.get("family") == "inet" and "local" in a
        ]
        out.append(
            {
                "name": item["ifname"],
                "flags": list(item.get("flags") or []),
                "ipv4": ipv4,
                "members": [],
                "status": "active" if item.get("operstate") in ("UP", "UNKNOWN") else "inactive",
                "master": item.get("master"),
            }
        )
    by_name = {i["name"]: i for i in out}
    for i in out:
        master = by_name.get(i.pop("master", None) or "")
        if master is not None:
            master["members"].append(i["name"])
    return out


def interfaces(parsed: list[dict[str, Any]], ports: dict[str, str] | None = None) -> list[dict]:
    """The parsed interfaces with their hardware port and whether they are Thunderbolt."""
    ports = ports or {}

    def own(name: str) -> bool:
        port = ports.get(name, "")
        return port.startswith("Thunderbolt") or name.startswith("thunderbolt")

    out = []
    for i in parsed:
        members = i.get("members") or []
        tb = own(i["name"]) or (bool(members) and all(own(m) for m in members))
        out.append(
            {
                "name": i["name"],
                "ipv4": list(i.get("ipv4") or []),
                "up": "UP" in (i.get("flags") or []) and i.get("status") != "inactive",
                "members": list(members),
                "port": ports.get(i["name"]),
                "thunderbolt": tb,
            }
        )
    return out


def _run(cmd: list[str], timeout: float = 3.0) -> str | None:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def capture() -> dict[str, Any] | None:
    """{"source", "interfaces"} for this machine, or None when no tool answers. macOS:
    ifconfig + networksetup; Linux: ip -j addr (ifconfig when iproute2 is missing)."""
    try:
        if sys.platform == "darwin":
            text = _run(["ifconfig"])
            if text is None:
                return None
            ports = parse_hardware_ports(_run(["networksetup", "-listallhardwareports"]) or "")
            return {"source": "ifconfig", "interfaces": interfaces(parse_ifconfig(text), ports)}
        text = _run(["ip", "-j", "addr"])
        if text is not None:
            return {"source": "ip -j addr", "interfaces": interfaces(parse_ip_json(text))}
        text = _run(["ifconfig"])
        if text is not None:
            return {"source": "ifconfig", "interfaces": interfaces(parse_ifconfig(text))}
    except (ValueError, KeyError, TypeError):
        return None
    return None
