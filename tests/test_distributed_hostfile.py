"""Issue 13: hostfiles as mlx.launch reads them, the host probe and `genai doctor --hosts`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from genai_common.distributed import hostfile, hosts
from genai_common.distributed.hostfile import Host


def codes(found):
    return [f.code for f in found]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_json_list_as_mlx_launch_reads_it(tmp_path):
    path = write(
        tmp_path,
        "hosts.json",
        json.dumps([{"ssh": "mac1", "ips": ["10.0.0.1"]}, {"ssh": "mac2", "ips": ["10.0.0.2"]}]),
    )
    hf, found = hostfile.parse(path)
    assert found == []
    assert [h.ssh for h in hf.hosts] == ["mac1", "mac2"]
    assert hf.hosts[1].ips == ("10.0.0.2",)


def test_object_with_backend_and_envs_as_distributed_config_writes_it(tmp_path):
    data = {
        "backend": "jaccl",
        "envs": ["MLX_METAL_FAST_SYNCH=1"],
        "hosts": [
            {"ssh": "a", "ips": ["10.0.0.1"], "rdma": [None, "rdma_en2"]},
            {"ssh": "b", "ips": ["10.0.0.2"], "rdma": ["rdma_en2", None]},
        ],
    }
    hf, found = hostfile.parse(write(tmp_path, "h.json", json.dumps(data)))
    assert found == []
    assert hf.backend == "jaccl" and hf.envs == ("MLX_METAL_FAST_SYNCH=1",)
    # asking for another backend than the hostfile's: DST007
    _, found = hostfile.parse(write(tmp_path, "h.json", json.dumps(data)), backend="ring")
    assert codes(found) == ["DST007"]


def _jaccl(rdma_tables, backend="jaccl", ips=True):
    names = [f"mac{i}" for i in range(len(rdma_tables))]
    return {
        "backend": backend,
        "hosts": [
            {"ssh": n, "ips": [f"10.0.0.{i + 1}"] if ips or i else [], "rdma": r}
            for i, (n, r) in enumerate(zip(names, rdma_tables, strict=True))
        ],
    }


@pytest.mark.parametrize(
    ("data", "expect", "why"),
    [
        # what mlx.distributed_config writes for three Macs on Thunderbolt 5: no finding
        (_jaccl([[None, "rdma_en2", "rdma_en3"], ["rdma_en2", None, "rdma_en3"],
                 ["rdma_en2", "rdma_en3", None]]), [], ""),
        # only the coordinator (rank 0) needs an address (launch_jaccl)
        (_jaccl([[None, "rdma_en2"], ["rdma_en2", None]], ips=False), ["DST006"], "mac0"),
        (_jaccl([[None, "rdma_en2"], ["rdma_en2"]]), ["DST008"], "one entry per host (2)"),
        (_jaccl([["rdma_en1", "rdma_en2"], ["rdma_en2", None]]), ["DST008"], "host itself"),
        (_jaccl([[None, None, "rdma_en3"], ["rdma_en2", None, "rdma_en3"],
                 ["rdma_en2", "rdma_en3", None]]), ["DST008"], "mac0 to mac1"),
        # jaccl-ring talks to the two neighbours only: on four hosts, 0 and 2 need no device
        (_jaccl([[None, "rdma_en2", None, "rdma_en4"], ["rdma_en1", None, "rdma_en3", None],
                 [None, "rdma_en2", None, "rdma_en4"], ["rdma_en1", None, "rdma_en3", None]],
                backend="jaccl-ring"), [], ""),
        (_jaccl([[None, "rdma_en2", None, None], ["rdma_en1", None, "rdma_en3", None],
                 [None, "rdma_en2", None, "rdma_en4"], ["rdma_en1", None, "rdma_en3", None]],
                backend="jaccl-ring"), ["DST008"], "mac0 to mac3"),
    ],
)  # fmt: skip
def test_jaccl_rdma_table_as_mlx_launch_checks_it(tmp_path, data, expect, why):
    _, found = hostfile.parse(write(tmp_path, "h.json", json.dumps(data)))
    assert codes(found) == expect, [f.message for f in found]
    if why:
        assert why in found[0].message


def test_unknown_backend_is_dst002_and_refused_on_the_command_line(tmp_path):
    path = write(tmp_path, "h.json", json.dumps({"backend": "tcp", "hosts": [{"ssh": "a"}]}))
    hf, found = hostfile.parse(path)
    assert hf is None and codes(found) == ["DST002"] and "jaccl-ring" in found[0].message
    proc = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "doctor", "--ranks", "2", "--backend", "tcp"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "invalid choice: 'tcp'" in proc.stderr


def test_one_host_per_line(tmp_path):
    hf, found = hostfile.parse(write(tmp_path, "hosts", "# my macs\n127.0.0.1\n\n127.0.0.2\n"))
    assert found == []
    assert [h.ips for h in hf.hosts] == [("127.0.0.1",), ("127.0.0.2",)]
    # names without IPs cannot run the ring backend: DST006 per host
    _, found = hostfile.parse(write(tmp_path, "hosts", "mac1\nmac2\n"))
    assert codes(found) == ["DST006", "DST006"]
    _, found = hostfile.parse(write(tmp_path, "hosts", "mac1\nmac2\n"), backend="mpi")
    assert found == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[{"ssh": "a", ', "invalid JSON"),
        ('{"backend": "ring"}', '"hosts"'),
        ('[{"ips": ["10.0.0.1"]}]', 'no "ssh"'),
        ('[{"ssh": "a", "ips": "10.0.0.1"}]', "list of strings"),
        ('[{"ssh": "a", "ips": ["ten.0.0.1"]}]', "not an IP address"),
        ("[]", "empty"),
        ('{"hosts": "mac1"}', "expected a list"),
        ("", "no hosts"),
        ("mac 1, mac2\n", "not a host name"),
    ],
)
def test_malformed_hostfiles_are_dst002(tmp_path, text, why):
    hf, found = hostfile.parse(write(tmp_path, "hosts.json", text))
    assert hf is None
    assert codes(found) == ["DST002"]
    assert why in found[0].message


def test_duplicate_host(tmp_path):
    data = [{"ssh": "mac1", "ips": ["10.0.0.1"]}, {"ssh": "mac1", "ips": ["10.0.0.9"]}]
    _, found = hostfile.parse(write(tmp_path, "h.json", json.dumps(data)))
    assert codes(found) == ["DST003"]


def test_missing_hostfile_is_dst001_exit_1(tmp_path):
    missing = str(tmp_path / "nope.json")
    _, found = hostfile.parse(missing)
    assert codes(found) == ["DST001"]
    proc = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "doctor", "--hosts", missing, "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    assert [f["code"] for f in json.loads(proc.stdout)["findings"]] == ["DST001"]


def _closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs an ssh client (openssh)")
def test_unreachable_host_is_dst004_from_the_real_ssh():
    """The real ssh client against a closed port on loopback (an ssh:// destination names the
    port): refused at once, BatchMode, and the host is named with ssh's own words."""
    host = f"ssh://127.0.0.1:{_closed_loopback_port()}"
    t0 = time.monotonic()
    env, problem = hosts.probe_one(Host(0, host, ("127.0.0.1",), ()), 1, timeout=10)
    assert time.monotonic() - t0 < 10
    assert env is None and problem.code == "DST004"
    assert host in problem.message and "refused" in problem.message, problem.message


def test_a_host_that_never_answers_is_bounded(tmp_path, monkeypatch):
    """A stand-in ssh that hangs (a host that accepts and never answers): the probe gives up at
    its wall-clock limit with DST004, and the hung child is gone."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text("#!/bin/sh\nexec sleep 60\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    t0 = time.monotonic()
    env, problem = hosts.probe_one(Host(0, "mac2", ("127.0.0.2",), ()), 1, timeout=2)
    assert time.monotonic() - t0 < 10
    assert env is None and problem.code == "DST004"
    assert "no answer within 2 s" in problem.message


def test_loopback_host_runs_genai_env_locally_and_versions_compare():
    env, problem = hosts.probe_one(Host(0, "127.0.0.1", ("127.0.0.1",), ()))
    assert problem is None
    mine = hosts.versions_of(env)
    assert mine["mlx"] and mine["python"]
    assert hosts.compare({"a": env, "b": env}) == []
    # a host that reports another mlx (its env as another machine would print it)
    other = json.loads(json.dumps(env))
    other["frameworks"]["mlx"]["version"] = "0.0.1"
    found = hosts.compare({"a": env, "b": other})
    assert codes(found) == ["DST005"]
    assert "0.0.1: b" in found[0].message
    assert hosts.budget(env) > 0


def test_ssh_command_never_prompts():
    cmd = hosts.ssh_command("mac1", 3)
    assert "BatchMode=yes" in cmd and "ConnectTimeout=3" in cmd
    assert cmd[-1] == "genai env --json"
