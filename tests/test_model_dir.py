"""ModelDir: kind detection, what each loader reads, hub-cache resolution, metadata-only mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from malformed_corpus import (
    CONFIG,
    base_llm,
    llm_tensors,
    sharded_llm,
    vae_component,
    write_gguf,
    write_json,
    write_st,
)

from genai_common.model import ModelDir, ModelPathError
from genai_common.model.hub import download_metadata, resolve_hub_cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_tiny_llm(tiny_llm: Path) -> None:
    md = ModelDir.open(tiny_llm)
    assert (md.kind, md.loader, md.model_type) == ("llm", "mlx-lm", "llama")
    assert md.tensor_files == ["model.safetensors"]
    emb = md.tensors["model.embed_tokens.weight"]
    assert emb.shape == (md.config["vocab_size"], md.config["hidden_size"])
    assert emb.file == "model.safetensors" and emb.nbytes is not None
    assert md.tokenizer is not None and md.tokenizer.size is not None
    assert md.problems == []
    assert md.json("config.json") is md.config  # read once, cached


def test_tiny_vlm(tiny_vlm: Path) -> None:
    md = ModelDir.open(tiny_vlm)
    assert (md.kind, md.loader) == ("vlm", "mlx-vlm")
    assert md.vision_config is not None
    assert md.text_config is not md.config or "vocab_size" in md.config


def test_tiny_ml_and_single_file(tiny_ml: Path) -> None:
    md = ModelDir.open(tiny_ml)
    assert (md.kind, md.loader) == ("ml", "mlx")
    single = ModelDir.open(tiny_ml / "model.safetensors")
    assert single.single_file is not None and single.files == ["model.safetensors"]
    assert single.tensors.keys() == md.tensors.keys()


def test_mlx_lm_reads_only_its_glob(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    write_st(tmp_path / "consolidated.safetensors", {"x": ("F16", (2,))})
    write_st(tmp_path / "extra.safetensors", {"y": ("F16", (2,))})
    md = ModelDir.open(tmp_path)
    assert md.tensor_files == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    assert "x" not in md.tensors and "y" not in md.tensors
    vlm = ModelDir.open(tmp_path, kind="vlm")
    assert vlm.loader == "mlx-vlm"
    assert vlm.tensor_files == md.tensor_files  # the index's shards that exist
    (tmp_path / "model.safetensors.index.json").unlink()
    vlm = ModelDir.open(tmp_path, kind="vlm")
    assert "consolidated.safetensors" not in vlm.tensor_files
    assert "extra.safetensors" in vlm.tensor_files


def test_duplicate_tensors_across_files(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    write_st(tmp_path / "model.safetensors", {"model.norm.weight": ("F16", (8,))})
    md = ModelDir.open(tmp_path)
    assert list(md.duplicate_tensors) == ["model.norm.weight"]
    assert len(md.duplicate_tensors["model.norm.weight"]) == 2


def test_kinds(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    write_json(adapter / "adapter_config.json", {"base_model_name_or_path": "org/base", "r": 8})
    write_st(adapter / "adapters.safetensors", {"a.lora_a": ("F16", (8, 4))})
    md = ModelDir.open(adapter)
    assert md.kind == "adapter" and md.tensor_files == ["adapters.safetensors"]

    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir()
    write_gguf(gguf_dir / "m.gguf")
    assert ModelDir.open(gguf_dir).kind == "gguf"
    single = ModelDir.open(gguf_dir / "m.gguf")
    assert single.kind == "gguf" and single.gguf is not None and single.gguf.architecture == "llama"

    diff = tmp_path / "diff"
    write_json(
        diff / "model_index.json",
        {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]},
    )
    write_json(
        diff / "unet" / "config.json", {"_class_name": "UNet2DConditionModel", "in_channels": 4}
    )
    write_st(
        diff / "unet" / "diffusion_pytorch_model.safetensors",
        {"conv_in.weight": ("F16", (4, 4, 3, 3))},
    )
    write_st(
        diff / "unet" / "diffusion_pytorch_model.fp16.safetensors",
        {"conv_in.weight": ("F16", (4, 4, 3, 3))},
    )
    md = ModelDir.open(diff)
    assert (md.kind, md.loader) == ("diffusion", "diffusers")
    unet = md.component("unet")
    assert unet.config["in_channels"] == 4
    assert unet.tensor_files == ["diffusion_pytorch_model.safetensors"]
    assert unet.tensors["conv_in.weight"].file == "unet/diffusion_pytorch_model.safetensors"
    assert md.component("unet") is unet

    vlm = tmp_path / "vlm"
    base_llm(vlm)
    write_json(vlm / "config.json", {**CONFIG, "vision_config": {"hidden_size": 16}})
    assert ModelDir.open(vlm).kind == "vlm"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert ModelDir.open(empty).kind == "unknown"


def test_component_findings_name_the_component_file(tmp_path: Path) -> None:
    write_json(
        tmp_path / "model_index.json", {"_class_name": "X", "vae": ["diffusers", "AutoencoderKL"]}
    )
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{broken")
    md = ModelDir.open(tmp_path)
    assert md.component("vae").config is None
    assert [(f.code, f.file) for f in md.problems] == [("JSON002", "vae/config.json")]


def test_files_skip_hidden_folders_and_list_relative(tmp_path: Path) -> None:
    base_llm(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json").write_text("{}")
    assert ModelDir.open(tmp_path).files == ["config.json", "model.safetensors", "sub/a.json"]


def test_metadata_only_uses_the_index(tmp_path: Path) -> None:
    weight_map = sharded_llm(tmp_path)
    md = ModelDir.open(tmp_path, metadata_only=True)
    assert set(md.tensors) == set(weight_map)
    assert all(t.shape is None and t.dtype is None for t in md.tensors.values())
    assert md.headers == {}


def test_no_weights_switches_to_metadata_only(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    for shard in tmp_path.glob("*.safetensors"):
        shard.unlink()
    md = ModelDir.open(tmp_path)
    assert md.metadata_only and md.auto_metadata_only
    assert len(md.tensors) == len(llm_tensors())


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelPathError, match="no such file"):
        ModelDir.open(tmp_path / "missing")
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(ModelPathError, match=r"not a \.safetensors or \.gguf"):
        ModelDir.open(tmp_path / "readme.md")


def _cache(root: Path, repo: str = "org/model", *, weights: bool = True) -> Path:
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    snap = repo_dir / "snapshots" / COMMIT
    if weights:
        base_llm(snap)
    else:
        write_json(snap / "config.json", CONFIG)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    (repo_dir / "blobs").mkdir()
    return snap


def test_hub_id_resolves_in_the_local_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    snap = _cache(tmp_path / "hf" / "hub")
    md = ModelDir.open("org/model")
    assert md.root == snap and md.hub_id == "org/model" and md.kind == "llm"
    assert ModelDir.open(f"org/model@{COMMIT}").root == snap
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(ModelPathError, match="--fetch-metadata"):
        ModelDir.open("org/model")


def test_hub_cache_without_refs_uses_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snap = _cache(tmp_path)
    (tmp_path / "models--org--model" / "refs" / "main").unlink()
    assert resolve_hub_cache("org/model") == snap
    assert resolve_hub_cache("org/model", "v2") is None
    (tmp_path / "models--org--model" / "refs" / "v2").write_text(COMMIT + "\n")
    assert resolve_hub_cache("org/model", "v2") == snap  # a named ref (branch or tag)


@pytest.mark.parametrize("ref", ["..", ".", "../snapshots", "", "a/../.."])
def test_a_ref_that_leaves_the_snapshots_folder_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snap = _cache(tmp_path)
    (tmp_path / "models--org--model" / "refs" / "main").write_text(ref)
    assert resolve_hub_cache("org/model") == snap  # the snapshot, never the repo folder
    assert resolve_hub_cache("org/model", "../refs") is None
    assert ModelDir.open("org/model").kind == "llm"


def test_incomplete_blob_in_the_cache_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _cache(tmp_path)
    (tmp_path / "models--org--model" / "blobs" / "abc123.incomplete").write_bytes(b"\0" * 10)
    from genai_common.doctor import diagnose

    assert "FILE011" in diagnose("org/model").codes()


def test_fetch_metadata_resolves_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--fetch-metadata goes through huggingface_hub; offline it must return the cached snapshot
    without touching the network (the online path cannot run here)."""
    pytest.importorskip("huggingface_hub", reason="--fetch-metadata uses huggingface_hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snap = _cache(tmp_path, weights=False)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert download_metadata("org/model") == snap
    md = ModelDir.open("org/model", fetch_metadata=True)
    assert md.root == snap and md.metadata_only
    from genai_common.doctor import diagnose

    report = diagnose("org/model", fetch_metadata=True)
    assert report.count("error") == 0, [(f.code, f.message) for f in report.findings]


def test_fetch_metadata_failure_without_cache_is_a_path_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub", reason="--fetch-metadata uses huggingface_hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelPathError, match="fetch-metadata failed"):
        ModelDir.open("org/absent", fetch_metadata=True)


def test_lfs_pointer_is_never_parsed(tmp_path: Path) -> None:
    base_llm(tmp_path)
    (tmp_path / "tokenizer.json").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:1\nsize 9\n"
    )
    md = ModelDir.open(tmp_path)
    assert "tokenizer.json" in md.lfs_pointers
    assert md.json("tokenizer.json") is None
    assert [f.code for f in md.problems] == []


def test_config_json_text_config_nesting(tmp_path: Path) -> None:
    base_llm(tmp_path)
    text = {k: v for k, v in CONFIG.items() if k != "architectures"}
    write_json(
        tmp_path / "config.json",
        {"model_type": "llava", "text_config": text, "vision_config": {"depth": 2}},
    )
    md = ModelDir.open(tmp_path)
    assert md.text_config["hidden_size"] == CONFIG["hidden_size"]
    assert md.model_type == "llava" and md.kind == "vlm"
    assert json.loads((tmp_path / "config.json").read_text())["vision_config"] == md.vision_config


def test_cache_repo_folder_opens_its_snapshot(tmp_path: Path) -> None:
    snap = _cache(tmp_path)
    md = ModelDir.open(tmp_path / "models--org--model")
    assert md.root == snap and md.kind == "llm"


def test_a_diffusers_component_alone_is_read_as_diffusers(tmp_path: Path) -> None:
    vae_component(tmp_path)
    md = ModelDir.open(tmp_path)
    assert (md.kind, md.loader) == ("ml", "diffusers")
    assert md.tensor_files == ["diffusion_pytorch_model.safetensors"]


def test_a_metadata_file_path_opens_its_directory(tmp_path: Path) -> None:
    sharded_llm(tmp_path)
    for name in ("config.json", "model.safetensors.index.json"):
        md = ModelDir.open(tmp_path / name)
        assert md.root == tmp_path and md.single_file is None and md.kind == "llm"


def test_paths_are_read_as_pathlib_reads_them(tiny_llm: Path, monkeypatch) -> None:
    """ModelDir works on strings (no pathlib on the static path) but md.root and md.single_file
    are what Path made of the same spelling before."""
    monkeypatch.chdir(tiny_llm.parent)
    name = tiny_llm.name
    for spelling in (name, f"{name}/", f"./{name}//", f"{name}/.", str(tiny_llm)):
        md = ModelDir.open(spelling)
        assert md.root == Path(spelling) and md.root_str == str(Path(spelling))
        assert md.single_file is None and md.single_name is None
        assert md.tensors  # the files are found through the string paths
    monkeypatch.chdir(tiny_llm)
    for spelling in (
        "model.safetensors",
        "./model.safetensors",
        str(tiny_llm / "model.safetensors"),
    ):
        md = ModelDir.open(spelling)
        assert md.single_file == Path(spelling) and md.single_name == "model.safetensors"
        assert md.root == Path(spelling).parent
        assert md.tensors
    md = ModelDir.open("config.json")
    assert md.root == Path(".") and md.single_file is None
