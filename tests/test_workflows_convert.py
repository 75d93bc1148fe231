"""Issue 11: convert and quantize the trained tiny llm through mlx-lm's own convert."""

from __future__ import annotations

import json

import pytest

from genai_common.workflows.common import results_row, todo_line
from genai_common.workflows.convert import convert


@pytest.mark.parametrize("bits", ["4", "8"])
def test_convert_quantizes_and_still_answers(tiny_llm, tmp_path, bits):
    out = tmp_path / f"q{bits}"
    r = convert(str(tiny_llm), str(out), quantize=bits, group_size=32, measure=False)
    assert r.verdict in ("pass", "warn"), r.findings
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization"]["bits"] == int(bits)
    assert r.metrics["output_bytes"] < r.metrics["source_bytes"]

    from mlx_lm import generate, load

    model, tok = load(str(out))
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
    )
    text = generate(model, tok, prompt, max_tokens=48)
    if bits == "8":
        assert "Paris" in text


def test_convert_refuses_bad_input_with_codes(tiny_llm, tmp_path):
    (tmp_path / "exists").mkdir()
    r = convert(str(tiny_llm), str(tmp_path / "exists"), quantize="7")
    codes = {f.code for f in r.findings}
    assert {"CNV002", "CNV004"} <= codes and r.verdict == "fail"


def test_group_size_that_does_not_divide_is_named(tiny_llm, tmp_path):
    from genai_common.model import ModelDir
    from genai_common.workflows.convert import _run, undivided

    md = ModelDir.open(str(tiny_llm))
    md.read_all()
    dims = {info.shape[-1] for n, info in md.tensors.items() if len(info.shape or ()) == 2}
    odd = next(g for g in (3, 5, 7, 11, 13) if any(d % g for d in dims))
    found = _run(undivided, md, odd)
    assert found and found[0].code == "CNV001"
    assert not _run(undivided, md, 1)


def test_results_row_and_todo_line_keep_user_lines(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# RESULTS\n\nMy own notes.\n\n## Later\n\nkeep me\n")
    results_row(str(results), "convert", "a", "b", "1 MB", 2.0, {"x": 1}, "pass")
    results_row(str(results), "convert", "a", "c", "1 MB", 2.0, {"x": 2}, "fail")
    text = results.read_text()
    assert "My own notes." in text and "keep me" in text
    assert text.count("| convert |") == 2 and text.count("| date (UTC) |") == 1
    todo = tmp_path / "TODO.md"
    todo.write_text("# TODO\n\n- [ ] mine\n")
    todo_line(str(todo), "genai convert a -> b: pass")
    assert todo.read_text().startswith("# TODO\n\n- [ ] mine\n")
    assert "genai convert a -> b: pass" in todo.read_text()


def test_genai_convert_command_records_row_todo_and_pyproject(tiny_llm, tmp_path, monkeypatch):
    import tomllib

    from genai_common.cli import main

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.genai]\nkind = "llm"\nmodel = "m"\n'
    )
    (tmp_path / "TODO.md").write_text("# TODO\n\n- [ ] mine\n")
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "q4")
    assert main(["convert", str(tiny_llm), "--output", out, "-q", "4", "--group-size", "32"]) == 0
    table = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["genai"]
    assert table["convert"] == {"output": out, "source": str(tiny_llm)} and table["kind"] == "llm"
    row = (tmp_path / "RESULTS.md").read_text()
    assert (
        "| convert q=4 g=32 |" in row and "decode_tps_output=" in row and "peak_mlx_source=" in row
    )
    assert "- [ ] mine" in (tmp_path / "TODO.md").read_text()
    assert main(["convert", str(tmp_path / "nope"), "--output", str(tmp_path / "z")]) == 2
