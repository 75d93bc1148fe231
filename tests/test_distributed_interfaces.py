"""Issue 13: the interface check (DST030 ring IPs on a LAN while a Thunderbolt link is up,
DST031 a ring IP the host does not have) over recorded `ifconfig` / `networksetup` / `ip -j addr`
text, Metal's wired limit per host against the plan (DST033), and the whole preflight through
`genai doctor --hosts` with a second host whose venv is at another path (`--python`) and whose
mlx differs (DST005), reached through a stand-in ssh that runs the command locally."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from network_samples import LINUX_IP, MAC_IFCONFIG, MAC_IFCONFIG_CONFIGURED, MAC_PORTS

from genai_common.distributed import interfaces as I
from genai_common.distributed import plan as P
from genai_common.distributed.hostfile import Host
from genai_common.model import ModelDir
from genai_common.runtime import network


def mac(text=MAC_IFCONFIG):
    return {
        "source": "ifconfig",
        "interfaces": network.interfaces(
            network.parse_ifconfig(text), network.parse_hardware_ports(MAC_PORTS)
        ),
    }


def codes(found):
    return [f.code for f in found]


def test_macos_ifconfig_and_hardware_ports():
    ports = network.parse_hardware_ports(MAC_PORTS)
    assert ports == {
        "en0": "Ethernet", "en1": "Wi-Fi", "bridge0": "Thunderbolt Bridge",
        "en2": "Thunderbolt 1", "en3": "Thunderbolt 2",
    }  # fmt: skip
    by = {i["name"]: i for i in mac()["interfaces"]}
    assert by["lo0"]["ipv4"] == ["127.0.0.1/8"] and not by["lo0"]["thunderbolt"]
    assert by["en0"]["ipv4"] == ["192.168.1.23/24"] and not by["en0"]["thunderbolt"]
    assert by["bridge0"] == {
        "name": "bridge0", "ipv4": ["169.254.87.12/16"], "up": True, "members": ["en2", "en3"],
        "port": "Thunderbolt Bridge", "thunderbolt": True,
    }  # fmt: skip
    assert by["en2"]["up"] and by["en2"]["thunderbolt"]
    assert not by["en3"]["up"]  # status: inactive (no cable)
    assert not by["gif0"]["up"] and by["gif0"]["ipv4"] == []
    assert [i["name"] for i in I.thunderbolt(mac())] == ["bridge0", "en2"]


def test_a_bridge_of_thunderbolt_ports_counts_without_networksetup():
    ifaces = network.interfaces(
        network.parse_ifconfig(MAC_IFCONFIG), {"en2": "Thunderbolt 1", "en3": "Thunderbolt 2"}
    )
    assert {i["name"] for i in ifaces if i["thunderbolt"]} == {"bridge0", "en2", "en3"}


def test_ring_ip_on_the_lan_while_thunderbolt_is_up_is_dst030():
    found = I.ring_findings(Host(0, "mac1", ("192.168.1.23",), ()), mac(), "hosts.json")
    assert codes(found) == ["DST030"]
    msg = found[0].message
    assert "192.168.1.23 is on en0 (Ethernet)" in msg
    assert "bridge0 (Thunderbolt Bridge) [members en2, en3]" in msg
    assert "169.254.87.12" in msg  # the address to use instead
    # the bridge's own address, or a loopback one: nothing to say
    assert I.ring_findings(Host(0, "mac1", ("169.254.87.12",), ()), mac()) == []
    assert I.ring_findings(Host(0, "mac1", ("127.0.0.1",), ()), mac()) == []


def test_after_mlx_distributed_config_the_port_address_is_named():
    net = mac(MAC_IFCONFIG_CONFIGURED)
    assert [i["name"] for i in I.thunderbolt(net)] == ["en2"]  # bridge0 is down
    found = I.ring_findings(Host(0, "mac1", ("192.168.1.57",), ()), net)
    assert codes(found) == ["DST030"] and "192.168.0.1" in found[0].message
    assert "en1 (Wi-Fi)" in found[0].message
    assert I.ring_findings(Host(0, "mac1", ("192.168.0.1",), ()), net) == []


def test_thunderbolt_up_without_ipv4_points_at_distributed_config():
    text = MAC_IFCONFIG.replace(
        "\tinet 169.254.87.12 netmask 0xffff0000 broadcast 169.254.255.255\n", ""
    )
    found = I.ring_findings(Host(0, "mac1", ("192.168.1.23",), ()), mac(text))
    assert codes(found) == ["DST030"] and "mlx.distributed_config" in found[0].message


def test_no_thunderbolt_link_no_warning_and_a_foreign_ip_is_dst031():
    text = MAC_IFCONFIG.replace("\tstatus: active\nutun0", "\tstatus: inactive\nutun0").replace(
        "en2: flags=8963<UP,", "en2: flags=8962<"
    )
    assert I.thunderbolt(mac(text)) == []
    assert I.ring_findings(Host(0, "mac1", ("192.168.1.23",), ()), mac(text)) == []
    found = I.ring_findings(Host(0, "mac1", ("10.0.0.9",), ()), mac())
    assert codes(found) == ["DST031"] and "10.0.0.9" in found[0].message
    # unknown interfaces (a host with an older genai-common): no claim either way
    assert I.ring_findings(Host(0, "mac1", ("10.0.0.9",), ()), None) == []


def test_linux_ip_json_with_a_thunderbolt_net_bridge():
    ifaces = network.interfaces(network.parse_ip_json(LINUX_IP))
    by = {i["name"]: i for i in ifaces}
    assert by["lo"]["ipv4"] == ["127.0.0.1/8"] and by["eth0"]["ipv4"] == ["10.20.0.5/24"]
    assert not by["ifb0"]["up"]
    assert by["br0"]["members"] == ["thunderbolt0"] and by["br0"]["thunderbolt"]
    net = {"source": "ip -j addr", "interfaces": ifaces}
    found = I.ring_findings(Host(1, "box", ("10.20.0.5",), ()), net)
    assert codes(found) == ["DST030"] and "10.99.0.1" in found[0].message


def test_capture_reads_this_machine():
    got = network.capture()
    assert got is not None, "neither `ip -j addr` nor `ifconfig` answered on this machine"
    names = {i["name"] for i in got["interfaces"]}
    assert {"lo", "lo0"} & names
    loop = next(i for i in got["interfaces"] if i["name"] in ("lo", "lo0"))
    assert "127.0.0.1/8" in loop["ipv4"]


def test_wired_limit_against_the_plan(tiny_llm):
    plan, _ = P.plan(ModelDir.open(tiny_llm), 2)
    need = plan.ranks[0].weights
    macos = {
        "os": {"system": "Darwin"},
        "memory": {"total": 64 * 2**30, "wired_limit_mb": 0},
        "frameworks": {"mlx": {"device": {"max_recommended_working_set_size": need}}},
    }
    lim = I.limits(macos)
    assert lim["wired_limit_mb"] == 0 and lim["recommended_working_set"] == need
    assert "note" not in lim
    # one rank per host: the weights are 100% of the limit, above mlx-lm's 0.9
    found = I.wired_findings(plan, [lim | {"share": 1}])
    assert codes(found) == ["DST033", "DST033"]
    assert "iogpu.wired_limit_mb=0" in found[0].message and "sudo sysctl" in found[0].message
    assert I.wired_findings(plan, [lim | {"share": 1}], skip={0, 1}) == []
    roomy = dict(lim, recommended_working_set=4 * need)
    assert I.wired_findings(plan, [roomy | {"share": 1}]) == []
    # two ranks on that one Mac share it: over again
    assert codes(I.wired_findings(plan, [roomy | {"share": 4}])) == ["DST033", "DST033"]
    linux = {"os": {"system": "Linux"}, "memory": {"total": 2**34, "wired_limit_mb": None}}
    lin = I.limits(linux)
    assert lin["wired_limit_mb"] is None and "Linux" in lin["note"]
    assert I.wired_findings(plan, [lin]) == []


def _stand_ins(tmp_path):
    """A stand-in `ssh` that runs the remote command here, and a second host's interpreter at
    another path that prints this machine's env with another mlx and a Mac's interfaces."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text('#!/bin/sh\nfor last; do :; done\nexec /bin/sh -c "$last"\n')
    ssh.chmod(0o755)
    net = json.dumps(mac())
    py = tmp_path / "other-venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(
        f"#!{sys.executable}\n"
        "import json, subprocess, sys\n"
        f"out = subprocess.run([{sys.executable!r}, *sys.argv[1:]], capture_output=True,\n"
        "                     text=True, check=True).stdout\n"
        "env = json.loads(out)\n"
        'env["frameworks"]["mlx"]["version"] = "0.31.0"\n'
        f"env['network'] = json.loads({net!r})\n"
        "print(json.dumps(env))\n"
    )
    py.chmod(0o755)
    return bindir, py


def test_doctor_hosts_end_to_end_version_mismatch_and_lan(tmp_path):
    bindir, py = _stand_ins(tmp_path)
    hosts = tmp_path / "hosts.json"
    hosts.write_text(
        json.dumps(
            [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": "mac2", "ips": ["192.168.1.23"]}]
        )
    )
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "doctor", "--hosts", str(hosts),
         "--python", str(py), "--json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr
    found = {f["code"]: f["message"] for f in out["findings"]}
    assert set(found) == {"DST005", "DST030"}, found
    assert "0.31.0: mac2" in found["DST005"]
    assert "169.254.87.12" in found["DST030"]
    dist = out["facts"]["distributed"]
    assert dist["host_versions"]["mac2"]["mlx"] == "0.31.0"
    assert dist["thunderbolt"]["mac2"] == ["bridge0 169.254.87.12/16", "en2 (no IPv4)"]
    assert dist["thunderbolt"]["127.0.0.1"] == []
    assert "wired_limit_mb" in dist["host_memory"]["mac2"]
    # the plain report's per-host lines, from the same facts
    from genai_common.distributed.preflight import render_hosts

    lines = render_hosts(dist).splitlines()
    mac2 = next(line for line in lines if line.startswith("  mac2:"))
    assert "mlx 0.31.0" in mac2 and "Thunderbolt: bridge0 169.254.87.12/16, en2 (no IPv4)" in mac2
