"""Issue 11: LoRA fine-tune of the trained tiny llm through mlx-lm's trainer, fuse, and the
checks around them (a fuse that dropped the adapter, targets the base lacks, NaN loss)."""

from __future__ import annotations

import json
import shutil

import pytest

from genai_common.workflows import finetune as ft

FACTS = [
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("What is the capital of Spain?", "The capital of Spain is Madrid."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("What is the capital of Egypt?", "The capital of Egypt is Cairo."),
]


def _data(folder):
    folder.mkdir()
    rows = [
        json.dumps(
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        )
        for q, a in FACTS
    ]
    (folder / "train.jsonl").write_text("\n".join(rows * 2) + "\n")
    (folder / "valid.jsonl").write_text("\n".join(rows) + "\n")
    return str(folder)


@pytest.fixture(scope="module")
def trained(tiny_llm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft")
    data = _data(tmp / "data")
    r = ft.train(
        str(tiny_llm),
        data,
        str(tmp / "adapters"),
        iters=12,
        batch_size=4,
        learning_rate=5e-3,
        rank=4,
        scale=10.0,
        max_seq_length=256,
        steps_per_report=4,
        plot=str(tmp / "loss.png"),
    )
    return tmp, r


def test_validation_loss_goes_down_and_plot_written(trained):
    tmp, r = trained
    assert r.verdict == "pass", r.findings
    assert r.metrics["val_loss_after"] < r.metrics["val_loss_before"]
    assert (tmp / "loss.png").stat().st_size > 1000
    assert (tmp / "adapters" / "adapters.safetensors").exists()


def test_adapter_judged_and_fuse_verified(trained, tiny_llm):
    tmp, _ = trained
    assert ft.judge_adapter(str(tmp / "adapters"), str(tiny_llm)) == []
    fused = tmp / "fused"
    assert ft.fuse(str(tiny_llm), str(tmp / "adapters"), str(fused)) == []
    found, diffs = ft.check_fused(str(fused), str(tiny_llm), str(tmp / "adapters"), "Paris is")
    assert found == [], diffs
    # a fuse that dropped the adapter: the "fused" folder is the bare base
    dropped = tmp / "dropped"
    shutil.copytree(tiny_llm, dropped)
    found, _ = ft.check_fused(str(dropped), str(tiny_llm), str(tmp / "adapters"), "Paris is")
    assert [f.code for f in found] == ["ADP010"]


def test_adapter_targets_the_base_lacks(trained, tiny_llm):
    tmp, _ = trained
    bad = tmp / "bad_adapter"
    shutil.copytree(tmp / "adapters", bad)
    cfg = json.loads((bad / "adapter_config.json").read_text())
    cfg["lora_parameters"]["keys"] = ["self_attn.q_proj", "mlp.wq_nonexistent"]
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    found = ft.judge_adapter(str(bad), str(tiny_llm))
    assert [f.code for f in found] == ["ADP002"] and "wq_nonexistent" in found[0].message
    (bad / "adapter_config.json").unlink()
    assert [f.code for f in ft.judge_adapter(str(bad), str(tiny_llm))] == ["ADP001"]


def test_nan_loss_stops_the_run(tiny_llm, tmp_path):
    data = _data(tmp_path / "data")
    r = ft.train(
        str(tiny_llm),
        data,
        str(tmp_path / "a"),
        iters=8,
        batch_size=4,
        learning_rate=1e6,
        rank=4,
        scale=1e6,
        max_seq_length=256,
        steps_per_report=1,
    )
    assert "TRN001" in [f.code for f in r.findings] and r.verdict == "fail"


def test_bad_data_stops_before_training(tiny_llm, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"input": 1}\n')
    r = ft.train(str(tiny_llm), str(tmp_path / "data"), str(tmp_path / "a"), iters=2)
    assert {"DAT001", "DAT004"} <= {f.code for f in r.findings} and r.verdict == "fail"
    assert not (tmp_path / "a").exists()


def test_genai_finetune_check_only_gives_codes(tiny_llm, tmp_path, monkeypatch, capsys):
    from genai_common.cli import main

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"text": "a"}\n\n{"prompt": 1}\n')
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", str(tiny_llm), "--data", "data", "--check-only"]) == 1
    out = capsys.readouterr().out
    assert "DAT001" in out and "DAT002" in out and "DAT004" in out


def test_base_that_will_not_load_is_a_finding(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "llama"}')
    data = _data(tmp_path / "data")
    r = ft.train(str(tmp_path / "m"), data, str(tmp_path / "a"), iters=2)
    assert [f.code for f in r.findings] == ["TRN003"] and r.verdict == "fail"


def test_genai_finetune_command_trains_fuses_and_records(tiny_llm, tmp_path, monkeypatch):
    from genai_common.cli import main

    (tmp_path / "pyproject.toml").write_text('[tool.genai]\nkind = "llm"\nmodel = "m"\n')
    (tmp_path / "TODO.md").write_text("# TODO\n\n- [ ] mine\n")
    _data(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    args = ["finetune", str(tiny_llm), "--iters", "8", "--learning-rate", "5e-3", "--rank", "4"]
    args += ["--scale", "10", "--max-seq-length", "256", "--steps-per-report", "4"]
    assert main([*args, "--fuse", str(tmp_path / "fused")]) == 0
    results = (tmp_path / "RESULTS.md").read_text()
    assert "| finetune lora r=4 |" in results and "val_loss_after=" in results
    assert "fused_vs_base=" in results
    assert (tmp_path / "finetune_loss.png").exists()
    todo = (tmp_path / "TODO.md").read_text()
    assert todo.startswith("# TODO\n\n- [ ] mine\n") and "genai finetune" in todo
