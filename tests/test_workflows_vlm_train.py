"""Issue 11 item 3: a VLM converted through mlx-vlm's convert and fine-tuned through its trainer,
on the tiny qwen2_vl model, with VDT data checks before and the adapter judged after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mlx_vlm", reason="mlx-vlm is not installed")
pytest.importorskip("PIL", reason="pillow is not installed")

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


def _record(name: str, images: int = 1) -> dict:
    content = [{"type": "image"}] * images + [{"type": "text", "text": "What colour is this?"}]
    return {
        "images": [f"{name}.png"],
        "messages": [
            {"role": "user", "content": content},
            {"role": "assistant", "content": f"It is {name}."},
        ],
    }


def _data(folder: Path, train: list | None = None) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, rgb in COLOURS.items():
        Image.new("RGB", (56, 56), rgb).save(folder / f"{name}.png")
    train = train if train is not None else [_record(n) for n in COLOURS]
    lines = [r if isinstance(r, str) else json.dumps(r) for r in train]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    valid = [_record("red"), _record("blue")]
    (folder / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid))
    return folder


def test_convert_vlm_8bit_passes_and_4bit_is_judged(tiny_vlm, tmp_path):
    from genai_common.workflows.convert import convert

    r8 = convert(str(tiny_vlm), str(tmp_path / "q8"), quantize="8", group_size=32, measure=False)
    assert r8.verdict == "pass", r8.findings
    cfg = json.loads((tmp_path / "q8" / "config.json").read_text())
    assert cfg["quantization"]["bits"] == 8 and r8.metrics["kind"] == "vlm"
    assert r8.metrics["output_bytes"] < r8.metrics["source_bytes"]
    assert r8.metrics["verify_top1"] == 1.0 and r8.metrics["verify_vision_rel"] == 0.0
    r4 = convert(str(tiny_vlm), str(tmp_path / "q4"), quantize="4", group_size=32, measure=False)
    # the tiny model (hidden 64) loses more at 4 bits than genai verify's KL tolerance allows:
    # the verdict comes from verify's numbers, never from the converter succeeding
    assert r4.metrics["verify_kl_mean"] > r8.metrics["verify_kl_mean"]
    assert (r4.verdict == "fail") == any(f.code.startswith("QLT") for f in r4.findings)


def test_convert_vlm_bad_options_give_codes(tiny_vlm, tmp_path):
    from genai_common.workflows.convert import convert

    r = convert(str(tiny_vlm), str(tmp_path / "x"), quantize="7", method="dwq", measure=False)
    assert {"CNV004", "CNV031"} <= {f.code for f in r.findings} and r.verdict == "fail"
    assert not (tmp_path / "x").exists()


def test_genai_convert_vlm_records_bench_row(tiny_vlm, tmp_path, monkeypatch):
    from genai_common.cli import main

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.genai]\nkind = "vlm"\nmodel = "m"\n'
    )
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "q8")
    assert main(["convert", str(tiny_vlm), "-o", out, "-q", "8", "--group-size", "32"]) == 0
    row = (tmp_path / "RESULTS.md").read_text()
    assert "| convert vlm q=8 g=32 |" in row
    assert "decode_tps_source=" in row and "decode_tps_output=" in row and "verify_kl_mean=" in row
    assert "genai convert vlm q=8" in (tmp_path / "TODO.md").read_text()


def test_finetune_vlm_trains_and_judges_the_adapter(tiny_vlm, tmp_path):
    from genai_common.workflows.vlm import train_vlm

    data = _data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    plot = tmp_path / "loss.png"
    r = train_vlm(
        str(tiny_vlm), str(data), str(adapter), iters=3, learning_rate=1e-3, plot=str(plot)
    )
    assert r.verdict == "pass", r.findings
    assert r.metrics["val_loss_after"] < r.metrics["val_loss_before"]
    assert r.metrics["adapter_max_dlogit"] > 0 and plot.stat().st_size > 0
    assert (adapter / "adapters.safetensors").is_file()

    # the same adapter with lora_b zeroed: it loads, but changes nothing (VDT015)
    import mlx.core as mx

    from genai_common.workflows.vlm import judge_vlm_adapter

    weights = mx.load(str(adapter / "adapters.safetensors"))
    inert = {k: (mx.zeros_like(v) if "lora_b" in k.lower() else v) for k, v in weights.items()}
    mx.save_safetensors(str(adapter / "adapters.safetensors"), inert)
    found, diffs = judge_vlm_adapter(str(adapter), str(tiny_vlm))
    assert [f.code for f in found] == ["VDT015"] and diffs["adapter_max_dlogit"] == 0


def test_finetune_vlm_bad_data_stops_with_codes(tiny_vlm, tmp_path):
    from genai_common.workflows.vlm import train_vlm

    bad = [
        _record("red"),
        {"images": ["missing.png"], "messages": _record("red")["messages"]},
        _record("blue", images=2),
        {"images": ["green.png"], "text": "<|image_pad|> a green square"},
        "{not json",
    ]
    data = _data(tmp_path / "data", bad)
    r = train_vlm(str(tiny_vlm), str(data), str(tmp_path / "a"), iters=2)
    codes = {f.code for f in r.findings}
    assert {"VDT001", "VDT003", "VDT005", "VDT016"} <= codes and r.verdict == "fail"
    assert not (tmp_path / "a").exists()
    r = train_vlm(str(tiny_vlm), str(tmp_path / "nowhere"), str(tmp_path / "a"), iters=2)
    assert [f.code for f in r.findings] == ["VDT010"]
    (data / "train.jsonl").write_text("\n")
    r = train_vlm(str(tiny_vlm), str(data), str(tmp_path / "a"), iters=2)
    assert [f.code for f in r.findings] == ["VDT010"]


def test_genai_finetune_vlm_command(tiny_vlm, tmp_path, monkeypatch, capsys):
    from genai_common.cli import main

    data = _data(tmp_path / "data")
    # a generated project keeps RESULTS.md in reference/: the row and the loss plot go there
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "RESULTS.md").write_text("# RESULTS\n\nmine\n")
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", str(tiny_vlm), "--data", str(data), "--check-only"]) == 0
    args = ["finetune", str(tiny_vlm), "--data", str(data), "--iters", "2", "--batch-size", "1"]
    assert main([*args, "--learning-rate", "1e-3", "--adapter-path", "adp"]) == 0
    row = (tmp_path / "reference" / "RESULTS.md").read_text()
    assert "| finetune vlm lora r=8 |" in row and "val_loss_after=" in row and "mine" in row
    assert (tmp_path / "reference" / "finetune_loss.png").is_file()
    assert not (tmp_path / "RESULTS.md").exists()
    (data / "red.png").write_bytes(b"not a png")
    assert main(["finetune", str(tiny_vlm), "--data", str(data), "--check-only"]) == 1
    assert "VDT002" in capsys.readouterr().out


def test_convert_vlm_awq_runs_through_mlx_vlm(tiny_vlm, tmp_path):
    from genai_common.workflows.convert import convert

    r = convert(
        str(tiny_vlm),
        str(tmp_path / "awq"),
        quantize="4",
        group_size=32,
        method="awq",
        measure=False,
    )
    assert r.metrics["method"] == "awq" and "verify_kl_mean" in r.metrics, r.findings
    assert not any(f.code.startswith("CNV") for f in r.findings)


def test_finetune_vlm_paligemma_trains_too(tiny_vlm_paligemma, tmp_path):
    from genai_common.workflows.vlm import train_vlm

    data = _data(tmp_path / "data")
    r = train_vlm(
        str(tiny_vlm_paligemma), str(data), str(tmp_path / "a"), iters=3, learning_rate=1e-3
    )
    assert r.verdict == "pass", r.findings
    assert r.metrics["val_loss_after"] < r.metrics["val_loss_before"]
    assert r.metrics["adapter_max_dlogit"] > 0


def test_training_data_read_as_mlx_vlm_reads_it(tiny_vlm, tmp_path):
    from genai_common.workflows.vlm import check_training_data

    plain = [
        {"role": "user", "content": "What colour is this?"},
        {"role": "assistant", "content": "Red."},
    ]
    written = [
        {"role": "user", "content": "<|image_pad|> What colour is this?"},
        {"role": "assistant", "content": "Red."},
    ]
    sharegpt = [{"from": "human", "value": "What colour?"}, {"from": "gpt", "value": "Blue."}]
    records = [
        {"images": ["red.png"], "messages": plain},  # mlx-vlm inserts the image token: fine
        {"images": [{"path": "blue.png"}], "conversations": sharegpt},  # HF form: fine
        {"images": ["red.png"], "messages": written},  # a written token doubles the image
        {"images": [{"path": "gone.png"}], "messages": plain},
    ]
    data = _data(tmp_path / "data", records)
    found = {
        (f.code, f.message.split(":")[0]) for f in check_training_data(str(data), str(tiny_vlm))
    }
    assert found == {("VDT017", "line 3"), ("VDT001", "line 4")}
