"""`genai doctor --weights` on a larger synthetic checkpoint: wall time and peak memory of the
streaming value scan (issue 10 part 5). Run: `python -m benchmarks.bench_weights_scan [GiB]`.

The checkpoint is llama-shaped, bfloat16, two shards; the scan runs in a fresh child process so
its peak RSS (VmHWM, Linux; ru_maxrss survives exec) is the scan's own, not the builder's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
from genai_common.model import ModelDir
from genai_common.doctor.rules.weights import weight_findings
t = time.perf_counter()
found = weight_findings(ModelDir.open(sys.argv[1]))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "peak_rss_mib": int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) / 1024,
                  "codes": sorted({f.code for f in found})}))
"""


def build(root: str, gib: float) -> int:
    """A bf16 llama-shaped checkpoint of about `gib` GiB in two shards; returns its bytes."""
    import mlx.core as mx

    hidden, inter = 2048, 5632
    per_layer = (4 * hidden * hidden + 3 * hidden * inter) * 2
    layers = max(2, int(gib * 2**30 // per_layer))
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    total = 0
    for shard, span in enumerate((range(layers // 2), range(layers // 2, layers))):
        arrays = {}
        for i in span:
            for n in names:
                arrays[f"model.layers.{i}.self_attn.{n}.weight"] = (
                    mx.random.normal((hidden, hidden), dtype=mx.bfloat16) * 0.02
                )
            for n, shape in (
                ("gate_proj", (inter, hidden)),
                ("up_proj", (inter, hidden)),
                ("down_proj", (hidden, inter)),
            ):
                arrays[f"model.layers.{i}.mlp.{n}.weight"] = (
                    mx.random.normal(shape, dtype=mx.bfloat16) * 0.02
                )
        mx.eval(arrays)
        path = os.path.join(root, f"model-{shard + 1:05d}-of-00002.safetensors")
        mx.save_safetensors(path, arrays, metadata={"format": "mlx"})
        total += os.path.getsize(path)
    cfg = {
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "vocab_size": 32000,
        "architectures": ["LlamaForCausalLM"],
    }
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(cfg, f)
    return total


def main() -> None:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    with tempfile.TemporaryDirectory() as root:
        size = build(root, gib)
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, root], capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - t
        row = json.loads(out.stdout)
        row.update(
            checkpoint_gib=size / 2**30, child_wall_s=wall, gib_per_s=size / 2**30 / row["seconds"]
        )
        print(json.dumps(row))


if __name__ == "__main__":
    main()
