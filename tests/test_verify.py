"""genai verify (issue 10), first slice: a good pair passes, a broken one fails, through the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mlx_lm", reason="genai verify needs mlx-lm")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "verify", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_identical_pass_and_norm_plus_one_fails(tiny_llm, tmp_path):
    import mlx.core as mx

    src = str(tiny_llm)
    good = _cli(src, "--against", src, "--json", "--context", "256")
    assert good.returncode == 0, good.stderr
    out = json.loads(good.stdout)
    assert out["schema"] == 1 and out["verdict"] == "pass"
    assert out["metrics"]["top1_agreement"] == 1.0

    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    for f in broken.glob("*.safetensors"):
        weights = mx.load(str(f))
        weights = {k: (v + 1 if k.endswith("norm.weight") else v) for k, v in weights.items()}
        mx.save_safetensors(str(f), weights, metadata={"format": "mlx"})
    bad = _cli(str(broken), "--against", src, "--json", "--context", "256")
    assert bad.returncode == 1, bad.stderr
    out = json.loads(bad.stdout)
    assert out["verdict"] == "fail"
    codes = [f["code"] for f in out["findings"]]
    assert codes[0] == "QLT001" and "QLT101" in codes  # localised: a norm offset (+1)
    assert out["first_bad_layer"] == "model.layers.0.input_layernorm"


def test_missing_path_exits_2(tmp_path):
    res = _cli(str(tmp_path / "nope"), "--against", str(tmp_path))
    assert res.returncode == 2 and "not found" in res.stderr


def test_8bit_conversion_passes(tiny_llm, tmp_path):
    from mlx_lm.convert import convert

    out = tmp_path / "q8"
    convert(str(tiny_llm), mlx_path=str(out), quantize=True, q_bits=8, q_group_size=64)
    from genai_common import corpus
    from genai_common.verify import verify

    text = tmp_path / "text.txt"
    text.write_text(corpus.text("austen")[:2000], encoding="utf-8")
    result = verify(str(out), str(tiny_llm), text=str(text), context=512)
    assert result.verdict == "pass", result.metrics
    assert 0 < result.metrics["kl_mean"] < 0.05
