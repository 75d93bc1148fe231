"""The static doctor on hostile inputs of issue 15: each judged in bounded time and output.

Each input is a small llama-shaped folder with one hostile file, generated at the size the issue
measured (or the nearest that the old code still finished): 50,000 distinct JSON keys written
twice in config.json (1.2 MB), 50,000 additional_special_tokens in tokenizer_config.json and
special_tokens_map.json (1.2 MB), 50,000 index entries escaping the folder (1.9 MB), a tensor of
200,000 dimensions (0.6 MB header), 50,000 header entries with a bad dtype (3 MB), a 400,000-
character model_type holding escape sequences, and a 5,000-digit integer in config.json.

Issue 15 item 3 (helper doctor-input) adds inputs whose memory the readers once let grow with
the input: a 118 MB tokenizer.json of 3M tokens and 3M merges (623 MB RSS, 4.5 s), a tokenizer.json
whose vocabulary writes 1,000,000 keys twice (37 MB), a safetensors header of 1,000,000 tensors
(92 MB: 15 s, 969 MB), a GGUF with a 2,000,000-string array, a 20,000,000-item u32 array and
200,000 arrays of 64 u32 (162 MB: 11.5 s, 598 MB), a config with NaN/Infinity, and JSON nested
1,000,000 deep.

Timed: `genai doctor PATH` as a new process (plain output, what a pre-commit hook pays), one run
each (the old code took 5 to 300 s on these; the point is the order of magnitude). Also
reported: the bytes of stdout and the process's peak RSS (os.wait4). Target (issue 15): every
input judged in under 5 s, output under 100 KB, no traceback. Run: `python -m benchmarks -k
hostile` or `python benchmarks/bench_hostile.py` (about 0.5 GB of temporary files).
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
    folder(
        "NaN and Infinity in config.json",
        {
            "config.json": '{"model_type": "llama", "hidden_size": NaN, "rms_norm_eps": Infinity, '
            '"num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 1000}',
            "generation_config.json": '{"temperature": NaN, "top_p": -Infinity}',
        },
    )
    folder(
        "JSON nested 1,000,000 deep",
        {"config.json": '{"model_type": "llama", "x": ' + "[" * 10**6 + "]" * 10**6 + "}"},
    )
    folder("tokenizer.json 118 MB (3M tokens, 3M merges)", {"tokenizer.json": _bpe(3_000_000)})
    folder(
        "tokenizer.json vocabulary writing 1,000,000 keys twice (37 MB)",
        {"tokenizer.json": _bpe(1_000_000, dup=1_000_000)},
    )
    header = {
        f"model.layers.{i}.w": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
        for i in range(1_000_000)
    }
    folder("safetensors header of 1,000,000 tensors (92 MB)", {"model.safetensors": header})
    gguf = base / "GGUF: 2M strings, 20M u32, 200,000 nested arrays (162 MB)"
    gguf.mkdir()
    _gguf_arrays(gguf / "model.gguf")
    out[gguf.name] = gguf / "model.gguf"
    return out


def _bpe(n: int, *, dup: int = 0) -> bytes:
    """A byte-level BPE tokenizer.json of n tokens and n merges in tokenizers' field order; `dup`
    vocabulary keys written a second time."""
    head = (
        '{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,'
        '"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,'
        '"use_regex":true},"post_processor":null,"decoder":{"type":"ByteLevel"},"model":'
        '{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,'
        '"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"ignore_merges":true,'
        '"vocab":{'
    )
    vocab = ",\n".join([f'"t{i}":{i}' for i in range(n)] + [f'"t{i}":{n + i}' for i in range(dup)])
    merges = ",\n".join(f'"t{i} t{i + 1}"' for i in range(n if not dup else 10))
    return (head + vocab + '},"merges":[' + merges + "]}}").encode()


def _gguf_arrays(path: Path) -> None:
    def string(s: bytes) -> bytes:
        return struct.pack("<Q", len(s)) + s

    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, 1, 4))
    out += string(b"general.architecture") + struct.pack("<I", 8) + string(b"llama")
    tokens = b"".join(string(b"tok%03d" % (i % 1000)) for i in range(2_000_000))
    inner = struct.pack("<IQ", 4, 64) + struct.pack("<64I", *range(1000, 1064))
    for key, payload in (
        (b"tokenizer.ggml.tokens", struct.pack("<IQ", 8, 2_000_000) + tokens),
        (b"x.u32", struct.pack("<IQ", 4, 20_000_000) + bytes(80_000_000)),
        (b"x.nested", struct.pack("<IQ", 9, 200_000) + inner * 200_000),
    ):
        out += string(key) + struct.pack("<I", 9) + payload
    out += string(b"token_embd.weight") + struct.pack("<IQQ", 2, 32, 4) + struct.pack("<IQ", 0, 0)
    out += bytes(-len(out) % 32) + bytes(512)
    path.write_bytes(bytes(out))


def run_one(path: Path, timeout: float = 600.0) -> dict[str, Any]:
    """One `genai doctor PATH` process: seconds, bytes of stdout, traceback, peak RSS (MB)."""
    import os
    import signal

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "genai_common", "doctor", str(path)], stdout=out, stderr=err
        )
        deadline = start + timeout
        while True:  # os.wait4 gives this child's own peak RSS
            pid, _, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.send_signal(signal.SIGKILL)
                os.wait4(child.pid, 0)
                return {"seconds": timeout, "bytes": None, "traceback": False, "timed_out": True}
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        child.returncode = 0  # reaped above: keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "seconds": seconds,
        "bytes": len(stdout),
        "traceback": b"Traceback" in stderr,
        "timed_out": False,
        "rss_mb": usage.ru_maxrss * scale / 2**20,
    }


_MAKE = (
    "import json, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
    "from benchmarks.bench_hostile import inputs; "
    "print(json.dumps({k: str(v) for k, v in inputs(Path(sys.argv[2])).items()}))"
)


def made_inputs(tmp: str) -> dict[str, Path]:
    """inputs(), made in a child process: building them takes ~1 GB here, and a forked child's
    peak RSS (ru_maxrss) starts from its parent's, so the parent stays small."""
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", _MAKE, root, tmp], capture_output=True, text=True, check=True
    )
    return {k: Path(v) for k, v in json.loads(done.stdout).items()}


def main() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in made_inputs(tmp).items():
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
                        f"{r['bytes']:,} bytes out, peak RSS {r['rss_mb']:.0f} MB"
                        if r["bytes"] is not None
                        else "timed out"
                    )
                    + ("; TRACEBACK" if r["traceback"] else ""),
                }
            )
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
