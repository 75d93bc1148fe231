"""FILE: one passing and one failing directory per check, with the loader-specific messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from malformed_corpus import (
    base_llm,
    sharded_llm,
    vae_component,
    write_gguf,
    write_json,
    write_st,
)

from genai_common.doctor.registry import check_family
from genai_common.model import ModelDir


def codes(path: Path, **kw) -> list[str]:
    return [f.code for f in check_family("files", ModelDir.open(path, **kw))]


def messages(path: Path, code: str, **kw) -> list[str]:
    return [f.message for f in check_family("files", ModelDir.open(path, **kw)) if f.code == code]


def test_clean_layouts_pass(tmp_path: Path) -> None:
    base_llm(tmp_path / "single")
    sharded_llm(tmp_path / "sharded")
    assert codes(tmp_path / "single") == []
    assert codes(tmp_path / "sharded") == []


def test_file002_names_the_glob_and_what_is_present(tmp_path: Path) -> None:
    base_llm(tmp_path, weights=False)
    write_st(tmp_path / "weights.safetensors", {"a": ("F16", (2,))})
    (msg,) = messages(tmp_path, "FILE002")
    assert "model*.safetensors" in msg and "weights.safetensors" in msg
    assert codes(tmp_path, kind="ml") == []  # a plain MLX loader reads *.safetensors


def test_file003_stray_file_for_mlx_lm(tmp_path: Path) -> None:
    base_llm(tmp_path)
    write_st(tmp_path / "consolidated.safetensors", {"a": ("F16", (2,))})
    (msg,) = messages(tmp_path, "FILE003")
    assert "mlx-lm" in msg and "consolidated.safetensors" in msg


def test_file004_and_file006(tmp_path: Path) -> None:
    d = tmp_path / "missing"
    sharded_llm(d)
    (d / "model-00001-of-00002.safetensors").unlink()
    (msg,) = messages(d, "FILE004")
    assert "1 missing: model-00001-of-00002.safetensors" in msg
    assert "FILE006" not in codes(d)
    stale = tmp_path / "stale"
    sharded_llm(stale)
    for p in stale.glob("model-*.safetensors"):
        p.rename(stale / p.name.replace("-of-00002", "-of-00003"))
    (msg,) = messages(stale, "FILE006")
    assert "none present" in msg and "mlx-lm ignores the index" in msg
    assert "FILE004" not in codes(stale)


def test_file004_not_raised_in_metadata_only(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    (tmp_path / "model-00001-of-00002.safetensors").unlink()
    assert codes(tmp_path, metadata_only=True) == []


def test_file005_extra_shard_not_in_index(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    write_st(tmp_path / "model-extra.safetensors", {"zzz": ("F16", (2,))})
    (msg,) = messages(tmp_path, "FILE005")
    assert "model-extra.safetensors" in msg and "mlx-lm reads 1 of them anyway" in msg


def test_file007_ratio_and_tolerance(tmp_path: Path) -> None:
    import json

    d = tmp_path / "m"
    sharded_llm(d)
    index = json.loads((d / "model.safetensors.index.json").read_text())
    actual = index["metadata"]["total_size"]
    index["metadata"]["total_size"] = actual * 3 + (2 << 20)
    write_json(d / "model.safetensors.index.json", index)
    (msg,) = messages(d, "FILE007")
    assert f"{actual:,}" in msg
    index["metadata"]["total_size"] = actual + 100  # within 1 MiB: rounding, not staleness
    write_json(d / "model.safetensors.index.json", index)
    assert "FILE007" not in codes(d)


def test_file009_names_both_files(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    write_st(tmp_path / "model.safetensors", {"model.norm.weight": ("F16", (8,))})
    (msg,) = messages(tmp_path, "FILE009")
    assert (
        "model.norm.weight" in msg and "model.safetensors" in msg and "model-00002-of-00002" in msg
    )


def test_file013_and_file017(tmp_path: Path) -> None:
    only = tmp_path / "only"
    base_llm(only, weights=False)
    (only / "pytorch_model.bin").write_bytes(b"\x80\x04never")
    assert "FILE013" in codes(only)
    beside = tmp_path / "beside"
    base_llm(beside)
    (beside / "pytorch_model.bin").write_bytes(b"\x80\x04never")
    (beside / "training_args.bin").write_bytes(b"\x80\x04never")
    assert codes(beside) == ["FILE017"]
    (msg,) = messages(beside, "FILE017")
    assert "training_args" not in msg


def test_file015_adapter(tmp_path: Path) -> None:
    write_json(tmp_path / "adapter_config.json", {"base_model_name_or_path": "org/base"})
    write_st(tmp_path / "adapter_model.safetensors", {"a": ("F16", (2,))})
    (msg,) = messages(tmp_path, "FILE015")
    assert "org/base" in msg


def test_file016_no_weights(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    for p in tmp_path.glob("*.safetensors"):
        p.unlink()
    assert codes(tmp_path) == ["FILE016"]
    assert codes(tmp_path, metadata_only=True) == []  # asked for: no warning


def test_file018_gguf_only_for_mlx_lm(tmp_path: Path) -> None:
    base_llm(tmp_path, weights=False)
    write_gguf(tmp_path / "model-q4_0.gguf")
    assert "FILE018" in codes(tmp_path)


@pytest.mark.parametrize(
    "name", ["model.safetensors.part", "x.incomplete", "model.safetensors.lock"]
)
def test_file011_partial_names(tmp_path: Path, name: str) -> None:
    base_llm(tmp_path)
    (tmp_path / name).write_bytes(b"\0")
    assert codes(tmp_path) == ["FILE011"]


def test_file001_empty_directory(tmp_path: Path) -> None:
    (msg,) = messages(tmp_path, "FILE001")
    assert "not a model directory" in msg


def test_file006_copied_index_names_its_size(tmp_path: Path) -> None:
    """mlx-swift-lm#554: an index copied from the bf16 source next to one 4-bit file."""
    import json

    base_llm(tmp_path)
    data_bytes = sum(t.nbytes for t in ModelDir.open(tmp_path).tensors.values())
    weight_map = {"model.norm.weight": "model-00001-of-00002.safetensors"}
    index = {"metadata": {"total_size": data_bytes * 3}, "weight_map": weight_map}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (msg,) = messages(tmp_path, "FILE006")
    assert f"declares {data_bytes * 3:,} bytes" in msg and "(3.00x)" in msg


def test_file019_single_file_diffusion_layouts(tmp_path: Path) -> None:
    """jundot/omlx#2096: ae.safetensors + a FLUX transformer, no config: say which loader."""
    write_st(
        tmp_path / "flux-schnell.safetensors",
        {
            "double_blocks.0.img_attn.qkv.weight": ("F16", (8, 4)),
            "single_blocks.0.linear1.weight": ("F16", (8, 4)),
        },
    )
    write_st(
        tmp_path / "ae.safetensors",
        {"decoder.conv_in.weight": ("F16", (4, 4)), "encoder.conv_in.weight": ("F16", (4, 4))},
    )
    found = codes(tmp_path)
    assert "FILE019" in found and "FILE001" not in found
    (msg,) = messages(tmp_path, "FILE019")
    assert "FLUX" in msg
    other = tmp_path / "other"
    write_st(other / "weights.safetensors", {"w": ("F16", (2,))})
    assert "FILE001" in codes(other)


def test_diffusers_variant_files_are_not_strays(tmp_path: Path) -> None:
    vae_component(tmp_path)
    assert codes(tmp_path) == []


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    import os

    from genai_common.doctor import diagnose

    base_llm(tmp_path)
    os.remove(tmp_path / "config.json")
    os.mkfifo(tmp_path / "config.json")  # opening it for reading would block forever
    report = diagnose(tmp_path)
    assert "FILE014" in report.codes()
    (msg,) = [f.message for f in report.findings if f.code == "FILE014"]
    assert "not a regular file" in msg


def _rename_shards(d: Path, old: str, new: str, *, keep_files: bool) -> None:
    """Rename the shards in the index (and on disk when kept) from `old...` to `new...`."""
    import json

    index = d / "model.safetensors.index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    data["weight_map"] = {k: v.replace(old, new) for k, v in data["weight_map"].items()}
    index.write_text(json.dumps(data), encoding="utf-8")
    for shard in d.glob(f"{old}*.safetensors"):
        if keep_files:
            shard.rename(d / shard.name.replace(old, new))
        else:
            shard.unlink()


@pytest.mark.parametrize("metadata_only", [True, False])
def test_file020_index_shards_the_glob_never_reads(tmp_path: Path, metadata_only: bool) -> None:
    """An index whose shards are named weights-0000N-of-0000M.safetensors: mlx-lm globs
    model*.safetensors and never reads the index, so every tensor is missing at load. Before a
    download (--metadata-only) the index alone says so."""
    sharded_llm(tmp_path)
    _rename_shards(tmp_path, "model-", "weights-", keep_files=not metadata_only)
    found = [
        f
        for f in check_family("files", ModelDir.open(tmp_path, metadata_only=metadata_only))
        if f.severity != "info"
    ]
    assert [f.code for f in found if f.code != "FILE002"] == ["FILE020"], found
    (f020,) = [f for f in found if f.code == "FILE020"]
    assert f020.severity == "error" and "weights-00001-of-00002.safetensors" in f020.message
    assert "model*.safetensors" in f020.message and "missing at load" in f020.message


def test_file020_one_shard_of_two_misnamed(tmp_path: Path) -> None:
    weight_map = sharded_llm(tmp_path)
    _rename_shards(tmp_path, "model-00002", "extra-00002", keep_files=False)
    assert codes(tmp_path, metadata_only=True) == ["FILE020"]
    (msg,) = messages(tmp_path, "FILE020", metadata_only=True)
    n = sum(1 for v in weight_map.values() if v.startswith("model-00002"))
    assert f"puts {n} tensor(s)" in msg and "1 shard(s)" in msg


def test_file013_only_a_pickle_index_before_download(tmp_path: Path) -> None:
    """pytorch_model.bin.index.json is the only index (a pickled checkpoint's metadata): in
    metadata-only mode nothing else says mlx-lm cannot load it."""
    import json

    base_llm(tmp_path, weights=False)
    shards = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    (tmp_path / "pytorch_model.bin.index.json").write_text(
        json.dumps(
            {"metadata": {"total_size": 10}, "weight_map": {"a": shards[0], "b": shards[1]}}
        ),
        encoding="utf-8",
    )
    found = [f for f in check_family("files", ModelDir.open(tmp_path, metadata_only=True))]
    assert [(f.code, f.severity) for f in found] == [("FILE013", "error")]
    assert "pytorch_model.bin.index.json" in found[0].message and shards[0] in found[0].message
    write_st(tmp_path / "model.safetensors", {"a": ("F16", (2,))})  # a safetensors release too
    assert "FILE013" not in codes(tmp_path, metadata_only=True)


def test_file021_weight_path_that_is_a_directory(tmp_path: Path) -> None:
    """'no weight files' is not the story when model.safetensors is a folder: it is named, as an
    error, whether it sits in the model directory or is the path given."""
    base_llm(tmp_path, weights=False)
    write_st(tmp_path / "model.safetensors" / "part.safetensors", {"a": ("F16", (2,))})
    found = [f for f in check_family("files", ModelDir.open(tmp_path)) if f.code == "FILE021"]
    assert [(f.severity, f.file) for f in found] == [("error", "model.safetensors")]
    assert "model.safetensors is a directory (1 file(s) inside)" in found[0].message
    given = [
        f
        for f in check_family("files", ModelDir.open(tmp_path / "model.safetensors"))
        if f.code == "FILE021"
    ]
    assert len(given) == 1 and "is a directory, not a weight file" in given[0].message


def test_file022_a_cut_listing_is_said_and_config_json_still_found(
    tmp_path: Path, tiny_llm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from genai_common.doctor import diagnose
    from genai_common.model import model_dir

    model = tmp_path / "m"
    shutil.copytree(tiny_llm, model)
    for i in range(60):  # listed before config.json in name order: "a..." < "config.json"
        (model / f"a{i:03d}.txt").write_text("")
    monkeypatch.setattr(model_dir, "MAX_FILES", 50)
    codes = {f.code for f in diagnose(str(model)).findings}
    assert "FILE022" in codes
    assert "FILE001" not in codes and "FILE002" not in codes


def test_file013_a_diffusers_component_whose_only_weights_are_pickled(tmp_path: Path) -> None:
    import json

    from genai_common.doctor import diagnose
    from genai_common.formats.safetensors import write_sparse

    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    for name, cls in (("unet", "UNet2DConditionModel"), ("vae", "AutoencoderKL")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"_class_name": cls}))
    write_sparse(
        tmp_path / "vae" / "diffusion_pytorch_model.safetensors",
        {"decoder.conv_in.weight": ("F32", (4, 4, 3, 3))},
        {"format": "pt"},
    )
    (tmp_path / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"PK\x03\x04" + b"\0" * 60)
    found = {f.code: f for f in diagnose(str(tmp_path)).findings}
    assert "FILE013" in found and "unet" in found["FILE013"].message
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(
        (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    )
    found = {f.code: f for f in diagnose(str(tmp_path)).findings}
    assert "FILE013" not in found and "FILE017" in found
