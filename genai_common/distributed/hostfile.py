"""Hostfiles as mlx.launch reads them (mlx._distributed_utils.common.Hostfile.from_file):

- JSON list of hosts: [{"ssh": "mac1", "ips": ["10.0.0.1"], "rdma": [...]}, ...]
- JSON object: {"backend": "ring|jaccl|jaccl-ring|mpi|nccl", "envs": ["K=V"], "hosts": [...]}
  (what mlx.distributed_config writes)
- plain text, one host per line (ssh name or IP; '#' comments), as `--hosts a,b` would list them.

Malformed input is a finding (DST001, DST002), never a traceback; DST003 duplicates,
DST006 ring hosts (or jaccl's rank 0) without ips, DST007 a backend that differs from the
hostfile's, DST008 a jaccl hostfile whose RDMA device table mlx.launch would refuse.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import NamedTuple

from genai_common.distributed import checks
from genai_common.findings import Finding

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
JACCL = ("jaccl", "jaccl-ring")  # RDMA over Thunderbolt 5: all pairs, or ring neighbours only
BACKENDS = ("ring", *JACCL, "mpi", "nccl")  # what mlx.launch --backend accepts


class Host(NamedTuple):
    rank: int
    ssh: str
    ips: tuple[str, ...]
    rdma: tuple


class Hostfile(NamedTuple):
    path: str
    hosts: tuple[Host, ...]
    backend: str
    envs: tuple[str, ...]


def is_local(host: Host) -> bool:
    """A host that is this machine by name or loopback address."""
    if host.ssh in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.ssh).is_loopback
    except ValueError:
        return False


def _ip_list(name: str) -> tuple[str, ...]:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return ()
    return (name,)


def _from_json(path: str, data: object) -> tuple[Hostfile | None, list[Finding]]:
    backend, envs = "", []
    if isinstance(data, dict):
        backend = data.get("backend", "")
        envs = data.get("envs", [])
        if "hosts" not in data:
            return None, [checks.malformed(path, 'a JSON object needs a "hosts" list')]
        data = data["hosts"]
        if not isinstance(backend, str) or backend not in ("", *BACKENDS):
            return None, [checks.malformed(path, f'"backend" must be one of {", ".join(BACKENDS)}')]
        if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
            return None, [checks.malformed(path, '"envs" must be a list of "KEY=VALUE" strings')]
    if not isinstance(data, list):
        return None, [
            checks.malformed(path, f"expected a list of hosts, got {type(data).__name__}")
        ]
    if not data:
        return None, [checks.malformed(path, "the list of hosts is empty")]
    hosts = []
    for i, h in enumerate(data):
        if not isinstance(h, dict) or not isinstance(h.get("ssh"), str) or not h["ssh"]:
            return None, [checks.malformed(path, f'entry {i} has no "ssh" host name: {h!r}'[:200])]
        ips = h.get("ips", [])
        if not isinstance(ips, list) or not all(isinstance(x, str) for x in ips):
            return None, [
                checks.malformed(path, f'entry {i} ("{h["ssh"]}"): "ips" must be a list of strings')
            ]
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                return None, [
                    checks.malformed(path, f'entry {i} ("{h["ssh"]}"): {ip!r} is not an IP address')
                ]
        rdma = h.get("rdma", [])
        hosts.append(Host(i, h["ssh"], tuple(ips), tuple(rdma) if isinstance(rdma, list) else ()))
    return Hostfile(path, tuple(hosts), backend, tuple(envs)), []


def parse(path: str, backend: str | None = None) -> tuple[Hostfile | None, list[Finding]]:
    """The hostfile at path and the findings about it (None when it cannot be used)."""
    if not os.path.isfile(path):
        return None, [checks.missing(path)]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        return None, [checks.malformed(path, f"cannot be read: {exc}")]
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            return None, [checks.malformed(path, f"invalid JSON: {exc}")]
        hf, found = _from_json(path, data)
    else:
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        names = [n for n in names if n]
        if not names:
            return None, [checks.malformed(path, "no hosts in the file")]
        bad = [n for n in names if any(c.isspace() or c in ",{}[]\"'" for c in n)]
        if bad:
            return None, [checks.malformed(path, f"not a host name: {bad[0]!r}")]
        hf = Hostfile(path, tuple(Host(i, n, _ip_list(n), ()) for i, n in enumerate(names)), "", ())
        found = []
    if hf is None:
        return None, found
    seen: dict[str, int] = {}
    for h in hf.hosts:
        for key in (h.ssh, *h.ips):
            if key in seen and seen[key] != h.rank and not is_local(h):
                found.append(checks.duplicate(path, key, seen[key], h.rank))
                break
            seen.setdefault(key, h.rank)
    effective = backend or hf.backend or "ring"
    if backend and hf.backend and backend != hf.backend:
        found.append(checks.backend_mismatch(path, backend, hf.backend))
    if effective == "ring":
        for h in hf.hosts:
            if not h.ips:
                found.append(checks.no_ips(path, h.ssh, effective))
    elif effective in JACCL:
        if not hf.hosts[0].ips:  # only the coordinator's address is needed (launch_jaccl)
            found.append(checks.no_ips(path, hf.hosts[0].ssh, effective))
        why = rdma_problem(hf.hosts, ring=effective == "jaccl-ring")
        if why:
            found.append(checks.rdma_table(path, why))
    return hf, found


def rdma_problem(hosts: tuple[Host, ...], ring: bool) -> str:
    """What is wrong with the hosts' RDMA device table for jaccl ("" when nothing), in the order
    mlx.launch's launch_jaccl checks it: one entry per host on every host, null for the host
    itself, a device for every peer (the two ring neighbours only for jaccl-ring)."""
    n = len(hosts)
    short = [h.ssh for h in hosts if len(h.rdma) != n]
    if short:
        return f'"rdma" of {", ".join(short[:3])} does not list one entry per host ({n})'
    not_null = [h.ssh for i, h in enumerate(hosts) if h.rdma[i] is not None]
    if not_null:
        return f'"rdma" of {", ".join(not_null[:3])} names a device for the host itself (null)'
    missing = [
        f"{h.ssh} to {hosts[j].ssh}"
        for i, h in enumerate(hosts)
        for j in (((i - 1) % n, (i + 1) % n) if ring else range(n))
        if i != j and h.rdma[j] is None
    ]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return f"no RDMA device is listed for {', '.join(missing[:3])}{more}"
    return ""
