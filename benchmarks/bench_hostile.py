"""The static doctor on hostile inputs of issue 15: each judged in bounded time and output.

Each input is a small llama-shaped folder with one hostile file, generated at the size the issue
measured (or the nearest that the old code still finished): 50,000 distinct JSON keys written
twice in config.json (1.2 MB), 50,000 additional_special_tokens in tokenizer_config.json and
special_tokens_map.json (1.2 MB), 50,000 index entries escaping the folder (1.9 MB), a tensor of
200,000 dimensions (0.6 MB header), 50,000 header entries with a bad dtype (3 MB), a 400,000-
character model_type holding escape sequences, and a 5,000-digit integer in config.json.

Timed: `genai doctor PATH` as a new process (plain output, what a pre-commit hook pays), one run
each (the old code took 5 to 300 s on these; the point is the order of magnitude). Also
reported: the bytes of stdout. Target (issue 15): every input judged in under 5 s, output under
100 KB, no traceback. Run: `python -m benchmarks -k hostile` or `python benchmarks/bench_hostile.py`.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

N = 50_000
LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 1000,
}
TARGET_S = 5.0
TARGET_BYTES = 100_000


def _header(path: Path, header: dict | bytes) -> None:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 16)


def inputs(base: Path) -> dict[str, Path]:
    """name -> a model folder holding one hostile file."""
    out = {}

    def folder(name: str, files: dict[str, str | bytes | dict]) -> None:
        d = base / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(LLAMA))
        _header(
            d / "model.safetensors", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
        )
        for rel, data in files.items():
            if rel.endswith(".safetensors"):
                _header(d / rel, data)  # type: ignore[arg-type]
            elif isinstance(data, bytes):
                (d / rel).write_bytes(data)
            else:
                (d / rel).write_text(data if isinstance(data, str) else json.dumps(data))
        out[name] = d

    toks = [f"<t{i}>" for i in range(N)]
    folder(
        "duplicate keys",
        {
            "config.json": "{"
            + ",".join(f'"k{i}": 1, "k{i}": 2' for i in range(N))
            + ', "model_type": "llama"}'
        },
    )
    folder(
        "special tokens",
        {
            "tokenizer_config.json": {"additional_special_tokens": toks},
            "special_tokens_map.json": {"additional_special_tokens": toks},
        },
    )
    folder(
        "index escaping",
        {
            "model.safetensors.index.json": {
                "metadata": {},
                "weight_map": {f"w{i}": f"../../x{i}.safetensors" for i in range(N)},
            }
        },
    )
    folder(
        "tensor rank 200k",
        {
            "model.safetensors": {
                "a": {"dtype": "F32", "shape": [2] * 200_000, "data_offsets": [0, 16]}
            }
        },
    )
    folder(
        "bad entries",
        {
            "model.safetensors": {
                f"t{i}": {"dtype": "XX", "shape": [1], "data_offsets": [0, 1]} for i in range(N)
            }
        },
    )
    folder(
        "escape sequences", {"config.json": {**LLAMA, "model_type": "\x1b]0;x\x07" + "x" * 400_000}}
    )
    folder(
        "5,000-digit integer",
        {"config.json": '{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}"},
    )
    return out


def run_one(path: Path, timeout: float = 600.0) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "genai_common", "doctor", str(path)],
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": timeout, "bytes": None, "traceback": False, "timed_out": True}
    return {
        "seconds": time.perf_counter() - start,
        "bytes": len(done.stdout),
        "traceback": b"Traceback" in done.stderr,
        "timed_out": False,
    }


def main() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in inputs(Path(tmp)).items():
            r = run_one(path)
            ok = (
                not r["timed_out"]
                and not r["traceback"]
                and r["seconds"] < TARGET_S
                and (r["bytes"] or 0) < TARGET_BYTES
            )
            rows.append(
                {
                    "benchmark": f"doctor on hostile input: {name}",
                    "value": f"{r['seconds']:.2f} s",
                    "target": f"< {TARGET_S:.0f} s, < 100 KB out",
                    "ok": ok,
                    "notes": (
                        f"{r['bytes']:,} bytes out" if r["bytes"] is not None else "timed out"
                    )
                    + ("; TRACEBACK" if r["traceback"] else ""),
                }
            )
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
