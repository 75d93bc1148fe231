"""DST: the rule metadata of the distributed preflight, plan and smoke test (one @rule per code).

Each function here builds the finding for its code; the modules of this package call them, and
doctor/registry.py lists this module in OTHER_FAMILIES so the catalogue shows every DST code."""

from __future__ import annotations

from genai_common.findings import Finding, declared, finding, rule, stamp


def _f(fn, code: str, message: str, file: str | None = None) -> Finding:
    return stamp(finding(code, message, file=file), declared(fn))


@rule(
    "DST001",
    "Hostfile not found",
    severity="error",
    fix="Pass the path of an existing hostfile (JSON as mlx.launch / mlx.distributed_config "
    "write it, or one host per line), or --ranks N for local ranks.",
    compares="the --hosts path vs the file system",
)
def missing(path: str) -> Finding:
    return _f(missing, "DST001", f"hostfile {path} does not exist", file=path)


@rule(
    "DST002",
    "Hostfile malformed",
    severity="error",
    fix='Write a JSON list [{"ssh": "host", "ips": ["10.0.0.1"]}, ...] or an object with '
    '"hosts" (optionally "backend", "envs"), as mlx.distributed_config writes it; or one host '
    "name per line.",
    compares="the hostfile text vs mlx.launch's Hostfile.from_file",
)
def malformed(path: str, why: str) -> Finding:
    return _f(malformed, "DST002", f"hostfile {path}: {why}", file=path)


@rule(
    "DST003",
    "The same host appears twice",
    severity="warning",
    fix="List each machine once (use -n / --repeat-hosts for several ranks on one machine on "
    "purpose); two entries for one Mac halve its memory budget per rank.",
    compares="ssh names and IPs of the hostfile's entries",
)
def duplicate(path: str, host: str, first: int, again: int) -> Finding:
    msg = f"host {host!r} is entry {first} and again entry {again}"
    return _f(duplicate, "DST003", msg, file=path)


@rule(
    "DST004",
    "Host unreachable",
    severity="error",
    fix="Check `ssh -o BatchMode=yes HOST true` works without a password (ssh-copy-id), that the "
    "host is on and that genai-common is installed there (`genai env --json`).",
    compares="ssh with BatchMode=yes and a connect timeout, bounded in time",
)
def unreachable(host: str, why: str) -> Finding:
    return _f(unreachable, "DST004", f"host {host!r}: {why}")


@rule(
    "DST005",
    "Versions differ between hosts",
    severity="error",
    fix="Install the same Python, mlx and mlx-lm everywhere (one lock file, `uv sync` on each "
    "host): ranks with different MLX versions can deadlock or disagree silently.",
    compares="python / mlx / mlx-lm versions from each host's `genai env --json`",
)
def versions(package: str, seen: dict[str, list[str]]) -> Finding:
    parts = "; ".join(f"{v}: {', '.join(hs)}" for v, hs in sorted(seen.items()))
    return _f(versions, "DST005", f"{package} differs between hosts ({parts})")


@rule(
    "DST006",
    "Ring or jaccl backend without IPs",
    severity="error",
    fix='Give every host its "ips" (mlx.distributed_config --backend ring writes them; prefer '
    "the Thunderbolt bridge addresses); mlx.launch refuses a ring hostfile without them, and a "
    "jaccl one whose rank 0 (the coordinator) has none.",
    compares="each host's ips vs the backend asked for or named in the hostfile",
)
def no_ips(path: str, host: str, backend: str) -> Finding:
    msg = f"host {host!r} has no ips, which the {backend} backend needs"
    return _f(no_ips, "DST006", msg, file=path)


@rule(
    "DST007",
    "Backend asked for differs from the hostfile's",
    severity="warning",
    fix='Use the backend the hostfile was configured for (its "backend" key), or re-run '
    "mlx.distributed_config for the other one.",
    compares='--backend vs the hostfile\'s "backend"',
)
def backend_mismatch(path: str, asked: str, declared_: str) -> Finding:
    msg = f"--backend {asked} but the hostfile says {declared_!r}"
    return _f(backend_mismatch, "DST007", msg, file=path)


@rule(
    "DST008",
    "jaccl hostfile without a full RDMA device table",
    severity="error",
    fix="Re-run `mlx.distributed_config --backend jaccl` (or jaccl-ring) over Thunderbolt 5: "
    'each host\'s "rdma" lists one entry per host, null for itself, a device (rdma_enN) for '
    "every peer it talks to (its two ring neighbours for jaccl-ring).",
    compares="each host's \"rdma\" list vs the hosts, as mlx.launch's launch_jaccl checks it",
)
def rdma_table(path: str, why: str) -> Finding:
    return _f(rdma_table, "DST008", f"{why}: mlx.launch refuses this hostfile", file=path)


@rule(
    "DST010",
    "The model does not support the parallel mode",
    severity="error",
    fix="Use the mode the model's mlx-lm class implements (`shard` for tensor parallel, "
    "`pipeline` for pipeline parallel), or another architecture: mlx-lm's sharded_load raises "
    "'does not support pipelining' / 'any sharding' otherwise.",
    compares="the mlx-lm model module's source (def shard, pipeline / PipelineMixin)",
)
def unsupported(model_type: str, mode: str) -> Finding:
    return _f(unsupported, "DST010", f"mlx-lm's {model_type} does not support {mode}")


@rule(
    "DST011",
    "Heads do not divide by the number of ranks",
    severity="error",
    fix="Choose a rank count that divides the attention and KV heads (tensor parallel divides "
    "n_heads and n_kv_heads by the group size), or use pipeline parallel.",
    compares="num_attention_heads / num_key_value_heads vs ranks",
)
def heads(what: str, count: int, ranks: int) -> Finding:
    return _f(heads, "DST011", f"{what} = {count} is not divisible by {ranks} ranks")


@rule(
    "DST012",
    "A rank does not fit its host's memory",
    severity="error",
    fix="Add hosts (the plan names the smallest count that fits), quantize, or shorten the "
    "context; on macOS raise the wired limit (sysctl iogpu.wired_limit_mb) with care.",
    compares="weights + KV cache at context + activations per rank vs the host's budget",
)
def does_not_fit(rank: int, need: int, budget: int, hint: str) -> Finding:
    gb = 1024**3
    msg = f"rank {rank} needs {need / gb:.2f} GiB but its host has {budget / gb:.2f} GiB; {hint}"
    return _f(does_not_fit, "DST012", msg)


@rule(
    "DST020",
    "Sharded output differs from the single-process run",
    severity="error",
    fix="Report it with the model and mlx / mlx-lm versions: the model's shard()/pipeline() "
    "splits something it should not (or a collective returned wrong values).",
    compares="greedy tokens of rank 0 under mlx.launch vs one process, same prompt",
)
def differs(message: str) -> Finding:
    return _f(differs, "DST020", message)


@rule(
    "DST021",
    "A rank failed or hung",
    severity="error",
    fix="Read the rank's last stderr lines in the message; a port in use: pass another "
    "--starting-port; a hang: check the hosts reach each other on the ring IPs.",
    compares="each rank's exit status and output, with a timeout",
)
def rank_failed(message: str) -> Finding:
    return _f(rank_failed, "DST021", message)


@rule(
    "DST022",
    "A collective returned a wrong value or has no implementation",
    severity="error",
    fix="Use a backend and device where the collective is implemented (on a GPU some "
    "collectives have no kernel): a skipped all_sum makes every rank compute alone.",
    compares="all_sum of known values across ranks vs the exact sum",
)
def collective(message: str) -> Finding:
    return _f(collective, "DST022", message)


@rule(
    "DST032",
    "Pipeline parallel needs the checkpoint's index file",
    severity="error",
    fix="Save the model with mlx_lm.convert (it writes model.safetensors.index.json), or write "
    'the index ({"metadata": {}, "weight_map": {tensor: file}}); or use tensor parallel.',
    compares="model.safetensors.index.json vs mlx-lm sharded_load's pipeline path, which opens "
    "it to pick each rank's files",
)
def no_index(path: str) -> Finding:
    msg = "pipeline parallel: sharded_load opens model.safetensors.index.json, which is missing"
    return _f(no_index, "DST032", msg, file=path)


@rule(
    "DST030",
    "Ring addresses on a LAN while a Thunderbolt link is up",
    severity="warning",
    fix='Put the host\'s Thunderbolt addresses in its "ips" (mlx.distributed_config --backend '
    "ring --over thunderbolt writes them): over the LAN the ring is several times slower "
    "(users report 8.7 vs 25.4 tok/s).",
    compares="the interface holding each ring IP vs the host's Thunderbolt interfaces that are "
    "up (networksetup hardware ports 'Thunderbolt N' / 'Thunderbolt Bridge', bridges of them; "
    "Linux thunderbolt<N>), from the host's `genai env --json`",
)
def lan_not_thunderbolt(
    host: str, ip: str, iface: str, tb: str, use: str, path: str | None = None
) -> Finding:
    msg = f"host {host!r}: ring IP {ip} is on {iface}, but Thunderbolt {tb} is up; {use}"
    return _f(lan_not_thunderbolt, "DST030", msg, file=path)


@rule(
    "DST031",
    "A ring IP is not an address of its host",
    severity="warning",
    fix='List in each host\'s "ips" addresses that host really has (`ifconfig` / `ip addr` '
    "there): the rank listens on them and the others connect to them.",
    compares="each ring IP vs the IPv4 addresses of the host's interfaces (its `genai env --json`)",
)
def ip_not_on_host(host: str, ip: str, path: str | None = None) -> Finding:
    msg = f"host {host!r}: ring IP {ip} is on none of its interfaces"
    return _f(ip_not_on_host, "DST031", msg, file=path)


@rule(
    "DST033",
    "A rank's weights pass 0.9 x its host's wired limit",
    severity="warning",
    fix="Raise Metal's wired limit on that Mac (`sudo sysctl iogpu.wired_limit_mb=N`, the "
    "message suggests N; it resets at reboot), add hosts or quantize: above it mlx-lm warns "
    "and generation can be slow.",
    compares="the rank's planned weight bytes vs 0.9 x Metal's recommended working set (which "
    "follows iogpu.wired_limit_mb) divided among the ranks on that host, as mlx-lm's "
    "generate.wired_limit() compares them",
)
def wired(
    rank: int, need: int, allowed: int, sysctl_mb: int | None, want_mb: int, room: str
) -> Finding:
    mb = 2**20
    now = f"iogpu.wired_limit_mb={sysctl_mb}" if sysctl_mb is not None else "the wired limit"
    msg = (
        f"rank {rank}: weights {need // mb} MB > 0.9 x {allowed // mb} MB its host can wire "
        f"({now}); try sudo sysctl iogpu.wired_limit_mb={want_mb}{room}"
    )
    return _f(wired, "DST033", msg)
