"""GGUF sources (issue 11 part 1, issue 10's GGUF reference): a tiny llama GGUF written the way
llama.cpp writes one (testing/tiny_gguf.py), read back by transformers' `gguf_file=`, converted
to MLX by `genai convert` and verified against transformers' dequantized reading of the file.

The torch-marked tests need torch, transformers, gguf and mlx-lm in one environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlx_lm", reason="genai convert needs mlx-lm")
pytest.importorskip("gguf", reason="writing a GGUF needs the gguf package")

CONTEXT = "256"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """genai ARGS; `cwd` where convert writes its RESULTS.md and TODO.md lines."""
    return subprocess.run(
        [sys.executable, "-m", "genai_common.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def ggufs(tiny_llm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from genai_common.testing.tiny_gguf import write_llama_gguf

    base = tmp_path_factory.mktemp("gguf")
    out = {}
    for name, qtype, permute in (
        ("F16", "F16", True),
        ("Q8_0", "Q8_0", True),
        ("Q4_0", "Q4_0", True),
        ("raw", "F16", False),
    ):
        (base / name).mkdir()
        out[name] = write_llama_gguf(tiny_llm, base / name / "tiny.gguf", qtype, permute_qk=permute)
    return out


@pytest.fixture(scope="module")
def from_q8(ggufs, tmp_path_factory) -> object:
    """genai convert's result for the Q8_0 file (no bench; the F16 file's exactness is checked on
    the weights transformers reads back)."""
    pytest.importorskip("torch", reason="reading a GGUF needs torch (genai-common[reference])")
    from genai_common.workflows.convert import convert

    out = tmp_path_factory.mktemp("from_gguf") / "q8"
    return convert(str(ggufs["Q8_0"]), str(out), measure=False, verify_context=int(CONTEXT))


@pytest.mark.torch
def test_transformers_reads_back_the_hf_weights(tiny_llm, ggufs):
    """F16 holds the float16 weights exactly, so the q/k permutation is undone exactly; without
    it the q and k rows come back scrambled."""
    import torch
    from transformers import AutoModelForCausalLM

    source = AutoModelForCausalLM.from_pretrained(str(tiny_llm), dtype=torch.float32).state_dict()
    for name, exact in (("F16", True), ("raw", False)):
        path = ggufs[name]
        read = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        ).state_dict()
        assert set(read) == set(source)
        q = "model.layers.0.self_attn.q_proj.weight"
        assert torch.equal(read[q], source[q]) is exact
        up = "model.layers.0.mlp.up_proj.weight"
        assert torch.equal(read[up], source[up])
    # the block quantizations read back within their step: Q8_0 finer than Q4_0
    errors = {}
    for name in ("Q8_0", "Q4_0"):
        path = ggufs[name]
        read = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        ).state_dict()
        errors[name] = max(float((read[k] - source[k]).abs().max()) for k in source)
    assert 0 < errors["Q8_0"] < errors["Q4_0"] < 0.5, errors


@pytest.mark.torch
def test_convert_from_gguf_passes_its_verification(tiny_llm, ggufs, from_q8):
    r = from_q8
    assert r.verdict == "pass", r.findings
    assert r.metrics["verify_backends"] == "mlx/transformers"
    assert r.metrics["verify_kl_mean"] < 1e-4, r.metrics
    assert r.metrics["source_bytes"] == ggufs["Q8_0"].stat().st_size
    cfg = json.loads((Path(r.output) / "config.json").read_text())
    assert cfg["rope_theta"] == json.loads((tiny_llm / "config.json").read_text())["rope_theta"]
    # the tokenizer transformers rebuilt from the GGUF metadata: same ids, same chat prompt, no
    # phantom token past the embedding (mlx-lm's own loader on both folders)
    from mlx_lm.utils import load_tokenizer

    ours, source = load_tokenizer(Path(r.output)), load_tokenizer(tiny_llm)
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    for tok in (ours, source):
        assert tok.eos_token_id == source.eos_token_id
    assert ours.apply_chat_template(chat, add_generation_prompt=True) == source.apply_chat_template(
        chat, add_generation_prompt=True
    )
    assert ours.encode("x = 3 + 4; print(x)") == source.encode("x = 3 + 4; print(x)")
    # the GGUF pads its token list with [PADn] up to the embedding rows, as llama.cpp does
    n = len(source._tokenizer)
    assert len(ours._tokenizer) == json.loads((tiny_llm / "config.json").read_text())["vocab_size"]
    ids = list(range(n))
    assert ours._tokenizer.convert_ids_to_tokens(ids) == source._tokenizer.convert_ids_to_tokens(
        ids
    )


@pytest.mark.torch
def test_verify_against_gguf_file(tiny_llm, ggufs, from_q8):
    good = _cli(
        "verify", from_q8.output, "--against", str(ggufs["Q8_0"]), "--json", "--context", CONTEXT
    )
    assert good.returncode == 0, good.stderr
    out = json.loads(good.stdout)
    assert out["verdict"] == "pass" and out["metrics"]["backends"] == "mlx/gguf"
    from genai_common.verify import verify

    # the same MLX model against the Hugging Face source: Q8_0's rounding is now a difference
    vs_source = verify(from_q8.output, str(tiny_llm), context=int(CONTEXT))
    assert vs_source.metrics["kl_mean"] > 10 * out["metrics"]["kl_mean"]
    # a GGUF written without llama.cpp's q/k permutation reads back scrambled: verify fails
    bad = verify(from_q8.output, str(ggufs["raw"]), context=int(CONTEXT))
    assert bad.verdict == "fail" and "QLT001" in [f.code for f in bad.findings], bad.metrics


def _gguf(path: Path, arch: str, raw_type: str | None = None) -> Path:
    """A one-tensor GGUF: `arch`, and a tensor of `raw_type` when given."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    if raw_type is None:
        w.add_tensor("token_embd.weight", np.zeros((4, 32), np.float16))
    else:
        qtype = getattr(gguf.GGMLQuantizationType, raw_type)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        w.add_tensor(
            "token_embd.weight", np.zeros((4, 32 // block * size), np.uint8), raw_dtype=qtype
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.torch
def test_unsupported_architecture_and_type_are_findings(tmp_path):
    from genai_common.workflows.convert import convert

    arch = convert(str(_gguf(tmp_path / "a.gguf", "notanarch")), str(tmp_path / "a"), measure=False)
    assert arch.verdict == "fail" and [f.code for f in arch.findings] == ["CNV020"]
    assert "llama" in arch.findings[0].message  # names what transformers reads
    typed = convert(
        str(_gguf(tmp_path / "t.gguf", "llama", "Q8_1")), str(tmp_path / "t"), measure=False
    )
    assert typed.verdict == "fail" and [f.code for f in typed.findings] == ["CNV021"]
    assert "Q8_1" in typed.findings[0].message and "Q8_0" in typed.findings[0].message
    res = _cli(
        "convert",
        str(tmp_path / "t.gguf"),
        "--output",
        str(tmp_path / "t2"),
        "--no-bench",
        cwd=tmp_path,
    )
    assert res.returncode == 1 and "CNV021" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_gguf_without_torch_is_a_finding(ggufs, tmp_path):
    from genai_common.verify.reference_hf import available

    if available() is None:
        pytest.skip("torch and transformers are installed here: the missing-extra path is moot")
    from genai_common.workflows.convert import convert

    r = convert(str(ggufs["F16"]), str(tmp_path / "out"), measure=False)
    assert r.verdict == "fail" and [f.code for f in r.findings] == ["CNV025"]
    assert "genai-common[reference]" in r.findings[0].message
    res = _cli("verify", str(tmp_path), "--against", str(ggufs["F16"]))
    assert res.returncode == 2 and "genai-common[reference]" in res.stderr
