"""The trained tiny models: build time cold (training) and warm (from the cache), what training
bought (corpus perplexity against the random initialisation, the greedy answer to the capital
prompt), and quantization damage against the float32 weights training ends with.

Cold builds use a fresh cache folder (GENAI_TINY_CACHE); the quality rows use those builds.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = [
    ("llm", "llama"),
    ("llm", "qwen2"),
    ("llm", "gemma"),
    ("llm", "deepseek_v3"),
    ("llm", "llama-4bit"),
    ("vlm", "qwen2_vl"),
    ("vlm", "paligemma"),
    ("ml", "mlp"),
]


@contextlib.contextmanager
def _cache(path: str):
    saved = os.environ.get("GENAI_TINY_CACHE")
    os.environ["GENAI_TINY_CACHE"] = path
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("GENAI_TINY_CACHE", None)
        else:
            os.environ["GENAI_TINY_CACHE"] = saved


def _random(kind: str, variant: str, dest: Path) -> Path:
    from genai_common.testing import tiny_llm, tiny_vlm

    if kind == "llm":
        return tiny_llm.build_text_model(dest, variant, 0, trained=False)
    dest.mkdir()
    builder = tiny_vlm.build_paligemma if variant == "paligemma" else tiny_vlm.build_qwen2_vl
    return builder(dest, 0, trained=False)


def main() -> list[dict[str, Any]]:
    from mlx_lm.convert import convert

    from genai_common.testing import quality, tiny_llm, tiny_ml
    from genai_common.testing.tiny import build

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="genai-bench-trained-") as tmp:
        tmp_path = Path(tmp)
        built: dict[str, Path] = {}
        with _cache(str(tmp_path / "cache")):
            for kind, variant in VARIANTS:
                start = time.perf_counter()
                cpu = time.process_time()
                built[variant] = build(kind, tmp_path / f"cold-{variant}", variant=variant)
                cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
                start = time.perf_counter()
                build(kind, tmp_path / f"warm-{variant}", variant=variant)
                warm = time.perf_counter() - start
                note = "llama-4bit: mlx-lm convert of the cached llama" if "4bit" in variant else ""
                rows.append(
                    {
                        "benchmark": f"genai tiny {kind} --variant {variant}: cold (trains) / warm",
                        "value": f"{cold:.2f} s ({cold_cpu:.1f} s CPU) / {warm * 1e3:.0f} ms",
                        "notes": note,
                    }
                )
        for kind, variant in VARIANTS:
            if kind == "ml":
                continue
            path = built[variant]
            trained = quality.perplexity(path, kind)
            extra = ""
            if "4bit" not in variant:
                random = quality.perplexity(_random(kind, variant, tmp_path / f"r-{variant}"), kind)
                extra = f" (random initialisation {random:.0f})"
            reply = quality.greedy_chat(path, quality.CAPITAL_PROMPT, kind=kind)
            rows.append(
                {
                    "benchmark": f"tiny {variant}: corpus perplexity; greedy capital answer",
                    "value": f"{trained:.1f}{extra}",
                    "ok": reply.startswith(quality.CAPITAL_ANSWER),
                    "notes": f"{reply!r}",
                }
            )
        model = tiny_ml.load_tiny_ml(built["mlp"])
        (tmp_path / "ml-init").mkdir()
        initial = tiny_ml.load_tiny_ml(tiny_ml.build(tmp_path / "ml-init", "mlp", 0, trained=False))
        x, y = tiny_ml.dataset(0)
        n = len(x)
        hx, hy = (a[n:] for a in tiny_ml.dataset(0, 2 * n))
        rows.append(
            {
                "benchmark": "tiny ml: loss on its task (trained / initial; held-out)",
                "value": f"{tiny_ml.mean_loss(model, x, y):.3f} / {tiny_ml.mean_loss(initial, x, y):.3f}",
                "notes": f"held-out {tiny_ml.mean_loss(model, hx, hy):.3f} / "
                f"{tiny_ml.mean_loss(initial, hx, hy):.3f}",
            }
        )
        float32 = tiny_llm.build_text_model(tmp_path / "f32", "llama", 0, dtype="float32")
        q8 = tmp_path / "q8"
        with contextlib.redirect_stdout(io.StringIO()):
            convert(str(built["llama"]), str(q8), quantize=True, q_bits=8, q_group_size=64)
        got = quality.compare(
            float32, {"float16": built["llama"], "8-bit": q8, "4-bit": built["llama-4bit"]}
        )
        rows.append(
            {
                "benchmark": "tiny llama float32: corpus perplexity",
                "value": f"{got['reference']['ppl']:.3f}",
            }
        )
        for name in ("float16", "8-bit", "4-bit"):
            g = got[name]
            rows.append(
                {
                    "benchmark": f"tiny llama {name} vs float32: perplexity; KL mean / p99 / max",
                    "value": f"{g['ppl']:.3f}; {g['kl_mean']:.2e} / {g['kl_p99']:.2e} / {g['kl_max']:.2e}",
                    "notes": "group 64, mlx-lm convert of the float16 checkpoint"
                    if "bit" in name
                    else "",
                }
            )
    return rows
