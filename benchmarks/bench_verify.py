"""`genai verify` (llm) cost against one teacher-forced forward pass of each side over the same
text (what `mlx_lm.perplexity` does for one model), and beside mlx_lm.perplexity's own `eval_ppl`
on the same windows (its perplexity of each side, and its time). Wall time and peak memory are
each measured in its own child process (peak RSS from VmHWM on Linux, ru_maxrss in bytes on
macOS; imports excluded, model loading and tokenization included on both sides). Target:
verify <= 2 x (forward of the reference + forward of the candidate).

Pairs: the trained tiny llama against its 4-bit conversion (the shipped corpus, the default
context); and, with `GENAI_BENCH_VERIFY_LARGE=1` (minutes on a CPU), a random ~0.5 B-parameter
Llama (mlx-lm's llama class, random init, float16) against its 4-bit conversion by
mlx_lm.convert. The large model borrows the tiny tokenizer (no tokenizer of a real 32k
vocabulary is shipped or cached offline): its embedding rows past the tokenizer are padding,
which verify excludes, so its rows are 384 wide; the forward passes carry the full cost.

    python -m benchmarks -k verify         (or: python benchmarks/bench_verify.py [--large])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TARGET_RATIO = 2.0

_CHILD = r"""
import json, resource, sys, time
import mlx.core as mx
from genai_common.verify import verify, llm
mode, cand, ref, context, text = sys.argv[1:6]
context = int(context)
text = None if text == "-" else text
start = time.perf_counter()
if mode == "verify":
    r = verify(cand, ref, context=context, text=text, localise=False)
    out = {"verdict": r.verdict, "kl_mean": r.metrics.get("kl_mean"), "mode": r.mode,
           "positions": r.metrics.get("positions"),
           "ppl": [r.metrics.get("ppl_reference"), r.metrics.get("ppl_candidate")]}
elif mode == "perplexity":  # mlx_lm.perplexity's own eval_ppl on the same full-length windows
    from mlx_lm.perplexity import eval_ppl
    from mlx_lm.utils import load
    wins, _ = llm._load_text(llm.SideSpec(ref), text, context)
    full = [w for w in wins if len(w) == context + 1]
    out = {"ppl": [], "se": [], "positions": len(full) * context}
    for path in (ref, cand):
        model, _tok = load(path)
        ppl, se = eval_ppl(model, mx.array(full), batch_size=1)
        out["ppl"].append(ppl)
        out["se"].append(se)
        del model
else:  # one teacher-forced forward of each side over the same windows, one model at a time
    spec = llm.SideSpec(ref)
    wins, _ = llm._load_text(spec, text, context)
    for path in (ref, cand):
        side = llm.open_side(llm.SideSpec(path))
        for ids in wins:
            side.rows(ids)
        side.close()
        del side
    out = {"positions": sum(len(w) - 1 for w in wins)}
out["seconds"] = time.perf_counter() - start
# VmHWM is reset by exec (ru_maxrss is not: it would report the parent's peak)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")] if sys.platform == "linux" else []
out["peak_rss"] = int(hwm[0].split()[1]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["mlx_peak"] = mx.get_peak_memory()
print(json.dumps(out))
"""


def measure(mode: str, cand: str, ref: str, context: int, text: str | None) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, cand, ref, str(context), text or "-"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode:
        raise RuntimeError(f"{mode} child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_large(dest: Path, tokenizer_from: Path) -> Path:
    """A random ~0.5 B Llama in float16 (mlx-lm's class, random init), with the tiny tokenizer."""
    import shutil

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    config = {
        "model_type": "llama",
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "intermediate_size": 4096,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "rms_norm_eps": 1e-5,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "architectures": ["LlamaForCausalLM"],
        "torch_dtype": "float16",
    }
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    model.set_dtype(mx.float16)
    weights = dict(tree_flatten(model.parameters()))
    dest.mkdir(parents=True)
    mx.save_safetensors(str(dest / "model.safetensors"), weights, metadata={"format": "mlx"})
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    for f in tokenizer_from.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, dest / f.name)
    return dest


def pair_rows(name: str, cand: str, ref: str, context: int, text: str | None) -> list[dict]:
    base = measure("forward", cand, ref, context, text)
    ver = measure("verify", cand, ref, context, text)
    ppl = measure("perplexity", cand, ref, context, text)
    ratio = ver["seconds"] / base["seconds"]
    notes = (
        f"verify {ver['seconds']:.1f} s (verdict {ver['verdict']}, {ver['mode']}, "
        f"KL {ver['kl_mean']:.3g}, {ver['positions']} positions, context {context}), "
        f"one forward of each side {base['seconds']:.1f} s; peak RSS verify "
        f"{ver['peak_rss'] / 2**20:.0f} MiB vs forwards {base['peak_rss'] / 2**20:.0f} MiB; "
        f"MLX peak {ver['mlx_peak'] / 2**20:.0f} vs {base['mlx_peak'] / 2**20:.0f} MiB"
    )
    ppl_notes = (
        f"mlx_lm.perplexity's eval_ppl on the {ppl['positions']} positions of the full windows, "
        f"both sides: {ppl['seconds']:.1f} s, perplexity reference {ppl['ppl'][0]:.4g} "
        f"+- {ppl['se'][0]:.2g}, candidate {ppl['ppl'][1]:.4g} +- {ppl['se'][1]:.2g}; verify's "
        f"over all {ver['positions']}: {ver['ppl'][0]:.4g} and {ver['ppl'][1]:.4g}"
    )
    return [
        {
            "benchmark": f"verify time / one forward of each side ({name})",
            "value": round(ratio, 2),
            "target": f"<= {TARGET_RATIO:g}",
            "ok": ratio <= TARGET_RATIO,
            "notes": notes,
        },
        {
            "benchmark": f"verify time / mlx_lm.perplexity of each side ({name})",
            "value": round(ver["seconds"] / ppl["seconds"], 2),
            "target": "-",
            "ok": True,
            "notes": ppl_notes,
        },
    ]


def main(large: bool | None = None) -> list[dict[str, Any]]:
    from mlx_lm.convert import convert

    from genai_common.testing.tiny import build

    if large is None:
        large = os.environ.get("GENAI_BENCH_VERIFY_LARGE") == "1"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="genai-bench-verify-") as tmp:
        tmp_path = Path(tmp)
        tiny = build("llm", tmp_path / "tiny", variant="llama")
        q4 = tmp_path / "tiny-q4"
        convert(str(tiny), mlx_path=str(q4), quantize=True, q_bits=4, q_group_size=64)
        rows += pair_rows("tiny llama vs its 4-bit, corpus", str(q4), str(tiny), 2048, None)
        if large:
            big = build_large(tmp_path / "llama-0.5b", tiny)
            bq4 = tmp_path / "llama-0.5b-q4"
            convert(str(big), mlx_path=str(bq4), quantize=True, q_bits=4, q_group_size=64)
            context = int(os.environ.get("GENAI_BENCH_VERIFY_CONTEXT", "512"))
            text = tmp_path / "text.txt"
            from genai_common import corpus

            chars = int(os.environ.get("GENAI_BENCH_VERIFY_CHARS", "6000"))
            text.write_text("\n".join(corpus.text(n) for n in corpus.PROSE)[:chars])
            rows += pair_rows(
                "random 0.5B llama vs its 4-bit", str(bq4), str(big), context, str(text)
            )
    return rows


if __name__ == "__main__":
    for row in main(large="--large" in sys.argv):
        print(json.dumps(row))
