"""FILE: files and layout, judged against what the loader will actually read.

mlx-lm globs ``model*.safetensors`` and never reads the index (mlx_lm/utils.py load_model, 0.32.2);
mlx-vlm reads the index's shards that exist, else ``*.safetensors`` but consolidated.safetensors
(mlx_vlm/utils.py load_model, 0.7.10); diffusers reads each component folder. So the same
directory can be fine for one loader and broken for another, and the messages say which.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.model import ModelDir


@rule(
    "FILE014",
    "A file is a broken link or not a regular file",
    severity="error",
    fix="A link into the Hugging Face cache points at a missing blob (an interrupted download or a "
    "pruned cache): download the model again. FIFOs and devices are never opened (they could "
    "block): replace them with the real file.",
    compares="every file listed can be stat()-ed",
)
def unreadable_files(md: ModelDir) -> Iterator[Finding]:
    for rel in md.files:
        if md.size(rel) is None:
            full = md.fspath(rel)
            what = "not a regular file" if os.path.lexists(full) else "gone"
            if os.path.islink(full) and not os.path.exists(full):
                what = "a broken link"
            yield finding("FILE014", f"{rel} is {what}: it is never opened", file=rel)


@rule(
    "SEC011",
    "A GGUF file holds thousands of metadata entries: only the first were kept",
    severity="warning",
    fix="llama.cpp writes tens of metadata entries; thousands are a damaged or hostile file. "
    "Re-download or re-convert it.",
    compares="GGUF metadata entries vs the 4,096 kept",
)
def gguf_metadata_cut(md: ModelDir) -> Iterator[Finding]:
    """What the GGUF reader recorded when it stopped keeping metadata (formats/gguf.py)."""
    for problem in md.problems:
        if problem.code == "SEC011":
            yield finding(problem.code, problem.message, file=problem.file)


@rule(
    "SEC020",
    "Safetensors headers larger than any real checkpoint's: the rest were not read",
    severity="error",
    fix="Real checkpoints' headers total a few MB (about 150 bytes a tensor; 25 MB for 200,000 "
    "tensors): a header this large is damaged or hostile. Re-download or re-convert the weights.",
    compares="the bytes of every safetensors header the checkpoint declares vs the 48 MiB read",
)
def header_budget(md: ModelDir) -> Iterator[Finding]:
    """What ModelDir.header recorded when the headers passed the budget (model_dir.py)."""
    for problem in md.problems:
        if problem.code == "SEC020":
            yield finding(problem.code, problem.message, file=problem.file)


@rule(
    "SEC021",
    "A GGUF header declares more items than any real file: the rest was not read",
    severity="error",
    fix="llama.cpp writes a few thousand tensors, tens of metadata entries and token lists of at "
    "most a few hundred thousand strings: this header is damaged or hostile. Re-download or "
    "re-convert the file.",
    compares="GGUF tensor infos, metadata entries and items of long arrays vs the reader's caps",
)
def gguf_header_cut(md: ModelDir) -> Iterator[Finding]:
    """What the GGUF reader raised when a header passed its caps (formats/gguf.py)."""
    for problem in md.problems:
        if problem.code == "SEC021":
            yield finding(problem.code, problem.message, file=problem.file)


@rule(
    "FILE021",
    "A path named like a weight file is a directory",
    severity="error",
    fix="A download or copy went wrong (a tool wrote a folder where the file belongs, or the "
    "path given is a folder): replace it with the weight file itself.",
    compares="entries named *.safetensors / *.gguf / *.bin (and the path given) are regular files",
)
def weight_dirs(md: ModelDir) -> Iterator[Finding]:
    for rel in md.weight_dirs:
        if rel == ".":
            yield finding(
                "FILE021",
                f"{md.display} is a directory, not a weight file: no loader reads it as weights",
            )
        else:
            inside = sum(1 for f in md.files if f.startswith(rel + "/"))
            yield finding(
                "FILE021",
                f"{rel} is a directory ({inside} file(s) inside), not a weight file: no loader "
                "reads it, so its weights are missing",
                file=rel,
            )


@rule(
    "FILE010",
    "A file is a Git-LFS pointer, not its content",
    severity="error",
    fix="The repository was cloned without LFS: run `git lfs pull` in it, or download with "
    "`hf download` instead of git.",
    compares="small files starting with 'version https://git-lfs.github.com/spec/'",
)
def lfs_pointers(md: ModelDir) -> Iterator[Finding]:
    for rel, fields in sorted(md.lfs_pointers.items()):
        size = fields.get("size", "?")
        yield finding(
            "FILE010", f"{rel} is a Git-LFS pointer to {size} bytes, not the file itself", file=rel
        )


@rule(
    "FILE011",
    "An unfinished download is present",
    severity="warning",
    fix="A download stopped part-way (.incomplete/.part files): run the download again until it "
    "finishes, then delete the leftovers.",
    compares="file names ending .incomplete, .part, .partial, .tmp, .download, .lock",
)
def partial_downloads(md: ModelDir) -> Iterator[Finding]:
    from genai_common.formats.files import is_partial_name

    partial = [f for f in md.files if is_partial_name(f)] + _cache_partials(md)
    if partial:
        yield finding(
            "FILE011",
            f"{len(partial)} unfinished download file(s): {', '.join(partial[:3])}",
            file=partial[0] if partial[0] in md.file_set else None,
        )


@rule(
    "FILE012",
    "A file is empty (0 bytes)",
    severity="error",
    fix="An empty config or weights file is a failed write or download: fetch it again.",
    compares="size of every weight, config and tokenizer file",
)
def empty_files(md: ModelDir) -> Iterator[Finding]:
    from genai_common.formats.files import is_partial_name

    for rel in md.files:
        if md.size(rel) == 0 and not is_partial_name(rel) and _matters(rel):
            yield finding("FILE012", f"{rel} is empty (0 bytes)", file=rel)


def _directory(md: ModelDir) -> bool:
    """A model directory (not one file given alone, not an adapter: those have their own rules)."""
    return md.single_name is None and md.kind != "adapter"


@rule(
    "FILE015",
    "This is an adapter, not a model",
    severity="info",
    fix="Load it on top of its base model (mlx_lm.load(base, adapter_path=...) or PEFT), or fuse it "
    "with mlx_lm.fuse.",
    compares="adapter_config.json present without config.json",
)
def adapter(md: ModelDir) -> Iterator[Finding]:
    if md.single_name is not None or md.kind != "adapter":
        return
    cfg = md.json("adapter_config.json") or {}
    base = cfg.get("base_model_name_or_path") or cfg.get("base_model")
    yield finding(
        "FILE015",
        "adapter_config.json without config.json: a LoRA/PEFT adapter"
        + (f" for {base}" if isinstance(base, str) else ""),
    )


@rule(
    "FILE001",
    "config.json is missing",
    severity="error",
    fix="Loaders build the model from config.json: copy it from the original model (same revision).",
    compares="config.json present for llm/vlm/ml directories (model_index.json for diffusers)",
)
@rule(
    "FILE019",
    "No config.json: a checkpoint layout that config-driven loaders do not read",
    severity="warning",
    fix="Use the loader named in the message (single-file diffusion checkpoints need mflux, "
    "DiffusionKit or diffusers from_single_file), or add the config.json it came with.",
    compares="tensor names of a config-less directory vs known single-file layouts",
)
def config_present(md: ModelDir) -> Iterator[Finding]:
    if not _directory(md) or "config.json" in md.file_set:
        return
    kind = md.kind
    if kind in ("llm", "vlm", "ml"):
        layout = _single_file_layout(md)
        if layout is None or layout.startswith("a language model"):
            yield finding(
                "FILE001",
                f"no config.json in {md.display}"
                + (f"; the tensors look like {layout}" if layout else ""),
            )
        else:
            yield finding("FILE019", f"no config.json; the tensor names look like {layout}")
    if kind == "unknown" and not md.weight_files:
        yield finding(
            "FILE001",
            "no config.json, model_index.json, weights or GGUF file: not a model directory",
        )


@rule(
    "FILE013",
    "Weights only in pickle format (.bin/.pt/.ckpt)",
    severity="error",
    fix="Pickle files can run code when loaded, and MLX loaders do not read them (they are never "
    "opened here). Convert to safetensors (e.g. with transformers save_pretrained(..., "
    "safe_serialization=True)) or use the hub's safetensors revision.",
    compares="weight files present (or, before a download, the only index: "
    "pytorch_model.bin.index.json): pickle formats without safetensors",
)
@rule(
    "FILE017",
    "Pickle files beside the safetensors weights",
    severity="info",
    fix="They are not read by MLX loaders and never opened here; delete them to save space.",
    compares="*.bin/*.pt/*.ckpt present beside safetensors",
)
def pickles(md: ModelDir) -> Iterator[Finding]:
    from genai_common.formats.files import is_pickle_name

    if not _directory(md):
        return
    pickled = [f for f in md.weight_files if is_pickle_name(f) and _is_weight_pickle(f)]
    safetensors = [f for f in md.weight_files if f.endswith(".safetensors")]
    ggufs = [f for f in md.weight_files if f.endswith(".gguf")]
    if pickled and not safetensors and not ggufs:
        yield finding(
            "FILE013",
            f"{len(pickled)} pickle weight file(s) ({', '.join(pickled[:3])}) and no safetensors",
            file=pickled[0],
        )
    elif not pickled and not safetensors and not ggufs and md.pickle_indexes and not md.indexes:
        # before a download (--metadata-only): the only index names pickled shards
        index = md.pickle_indexes[0]
        shards = sorted(set((md.json(index) or {}).get("weight_map", {}).values()) - {None})
        yield finding(
            "FILE013",
            f"the only weights index is {index}"
            + (
                f", naming {len(shards)} pickled shard(s) ({', '.join(map(str, shards[:2]))})"
                if shards
                else ""
            )
            + f": {md.loader or 'MLX loaders'} cannot load pickled weights, and no safetensors "
            "index or file is present",
            file=index,
        )
    elif pickled and md.kind == "diffusion" and (alone := _pickle_only_components(md, pickled)):
        # diffusers loads each component from its own folder: safetensors in one component do
        # not help another whose only weights are pickled
        yield finding(
            "FILE013",
            f"component(s) {', '.join(alone[:3])}: only pickle weights "
            f"({', '.join(f for f in pickled if f.split('/')[0] in alone[:3])}), no safetensors "
            "in that folder",
            file=next(f for f in pickled if f.split("/")[0] == alone[0]),
        )
    elif pickled:
        yield finding(
            "FILE017", f"{len(pickled)} pickle file(s) beside safetensors: {', '.join(pickled[:3])}"
        )


def _pickle_only_components(md: ModelDir, pickled: list[str]) -> list[str]:
    """The component folders of a diffusers pipeline whose weights are all pickled."""
    folders = sorted({f.split("/")[0] for f in pickled if "/" in f})
    return [
        folder
        for folder in folders
        if not any(
            f.startswith(folder + "/") and f.endswith((".safetensors", ".gguf"))
            for f in md.weight_files
        )
    ]


@rule(
    "FILE018",
    "Weights only in GGUF format for a safetensors loader",
    severity="warning",
    fix="mlx-lm and mlx-vlm read safetensors; mx.load reads a GGUF file but keeps only Q4_0/Q4_1/Q8_0 "
    "quantized. Use the model's safetensors release, or convert.",
    compares="*.gguf present and no *.safetensors in a config.json directory",
)
def gguf_only(md: ModelDir) -> Iterator[Finding]:
    if not _directory(md) or md.kind not in ("llm", "vlm"):
        return
    safetensors = [f for f in md.weight_files if f.endswith(".safetensors")]
    ggufs = [f for f in md.weight_files if f.endswith(".gguf")]
    if ggufs and not safetensors:
        yield finding("FILE018", f"{len(ggufs)} GGUF file(s) and no safetensors for {md.loader}")


@rule(
    "FILE016",
    "No weights present: judged from metadata only",
    severity="warning",
    fix="Configs, tokenizer and index were checked; download the weights (or pass --metadata-only to "
    "say this is intended) before loading.",
    compares="weight files present in a directory that has config.json or model_index.json",
)
def no_weights(md: ModelDir) -> Iterator[Finding]:
    if _directory(md) and md.auto_metadata_only:
        yield finding(
            "FILE016",
            "no weight files in this directory: configs, tokenizer and index were judged alone",
        )


@rule(
    "FILE050",
    "--fetch-metadata could not reach the hub",
    severity="info",
    fix="The cached snapshot was judged instead; run again with network access to refresh it.",
    compares="huggingface_hub.snapshot_download of configs, tokenizer and index files",
)
def fetch_failed(md: ModelDir) -> Iterator[Finding]:
    """--fetch-metadata that could not reach the hub (recorded when the path was opened)."""
    for problem in md.problems:
        if problem.code == "FILE050":
            yield finding(problem.code, problem.message, file=problem.file)


@rule(
    "FILE022",
    "The folder holds too many files to list: the listing stopped",
    severity="warning",
    fix="Point the doctor at the model's own folder (a home directory or a dataset is not a model "
    "directory); findings about files beyond the cut may be missing.",
    compares="files found while listing vs the cap (20,000; the top-level names rules look for "
    "are checked directly)",
)
def listing_cut(md: ModelDir) -> Iterator[Finding]:
    """The listing of the folder stopped at its cap (recorded when the files were listed)."""
    md.files  # noqa: B018 - listing records the problem
    for problem in md.problems:
        if problem.code == "FILE022":
            yield finding(problem.code, problem.message, file=problem.file)


# tensor-name markers of checkpoints that ship without a config.json
_LAYOUTS = (
    (
        ("double_blocks.", "single_blocks."),
        "a FLUX transformer in Black Forest Labs' format "
        "(load with mflux or diffusers FluxTransformer2DModel.from_single_file)",
    ),
    (("joint_blocks.",), "an SD3 MMDiT in Stability's format (diffusers from_single_file)"),
    (
        ("model.diffusion_model.",),
        "a Stable Diffusion single-file checkpoint "
        "(diffusers StableDiffusionPipeline.from_single_file, or DiffusionKit)",
    ),
    (
        ("decoder.conv_in.", "encoder.conv_in."),
        "a VAE / autoencoder alone (diffusers AutoencoderKL)",
    ),
    (
        ("embed_tokens.", "layers.0."),
        "a language model without its config: copy config.json "
        "(and the tokenizer files) from the model it came from",
    ),
)


def _single_file_layout(md: ModelDir) -> str | None:
    names = md.tensors.keys()
    if not names:
        return None
    for markers, description in _LAYOUTS:
        if all(any(m in n for n in names) for m in markers):
            return description
    return None


def _matters(rel: str) -> bool:
    return rel.endswith((".json", ".safetensors", ".gguf", ".model", ".jinja", ".bin", ".pt"))


def _is_weight_pickle(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return not name.startswith(("training_args", "optimizer", "scheduler", "rng_state"))


def _cache_partials(md: ModelDir) -> list[str]:
    """huggingface_hub leaves `.incomplete` blobs in the cache (hub ids) or in .cache/ (local_dir)."""
    out: list[str] = []
    folders = [os.path.join(md.root_str, ".cache", "huggingface", "download")]
    if md.hub_id is not None:
        folders.append(os.path.join(os.path.dirname(os.path.dirname(md.root_str)), "blobs"))
    for folder in folders:
        try:
            with os.scandir(folder) as entries:  # glob("*.incomplete"): hidden names excluded
                out.extend(
                    e.name
                    for e in entries
                    if e.name.endswith(".incomplete") and not e.name.startswith(".")
                )
        except OSError:
            continue
    return out


@rule(
    "FILE002",
    "No weight file that the loader reads",
    severity="error",
    fix="Download the weights, or name them as the loader expects (mlx-lm: model.safetensors or "
    "model-00001-of-0000N.safetensors).",
    compares="files the loader's glob/index selects vs the files present",
)
@rule(
    "FILE003",
    "Weight files that the loader will not read",
    severity="warning",
    fix="Rename them to model*.safetensors (mlx-lm reads no other name), delete strays, or regenerate "
    "the index so it names them.",
    compares="*.safetensors present vs the files the loader's glob/index selects",
)
def loader_files(md: ModelDir) -> Iterator[Finding]:
    if not _directory(md) or md.kind not in ("llm", "vlm", "ml"):
        return
    top_st = [f for f in md.top_files if f.endswith(".safetensors")]
    read = md.tensor_files
    if md.metadata_only:
        if not read and not md.index and md.kind in ("llm", "vlm"):
            return  # nothing to compare before a download
        return
    if not read:
        if top_st:
            yield finding(
                "FILE002",
                f"{md.loader} reads {_pattern(md)} and none matches; present: {', '.join(top_st[:4])}",
                file=top_st[0],
            )
        elif not md.weight_files:
            yield finding("FILE002", f"no weight files at all in {md.display}")
        return
    # diffusers variants (name.fp16.safetensors) are read when asked for: not strays
    unread = [
        f
        for f in top_st
        if f not in read
        and f not in md.unread_shards  # FILE020: the index says they hold the model's tensors
        and not (md.loader == "diffusers" and f.count(".") > 1)
    ]
    if unread:
        yield finding(
            "FILE003",
            f"{md.loader} reads {_pattern(md)}, so {len(unread)} file(s) will not be loaded: "
            f"{', '.join(unread[:4])}",
            file=unread[0],
        )


@rule(
    "FILE020",
    "The index puts tensors in shards the loader never reads",
    severity="error",
    fix="mlx-lm reads only model*.safetensors in the top folder and never the index: rename the "
    "shards to model-0000N-of-0000M.safetensors and their names in the index (or use a loader that "
    "follows the index); otherwise those tensors are missing at load.",
    compares="index weight_map shard names vs the loader's file selection (mlx-lm: "
    "model*.safetensors), with or without the shards present (--metadata-only)",
)
def unread_shards(md: ModelDir) -> Iterator[Finding]:
    if not _directory(md):
        return
    unread = md.unread_shards
    if not unread:
        return
    index = next((rel for rel, info in md.indexes.items() if info is md.index), None)
    names = [n for ns in unread.values() for n in ns]
    shards = sorted(unread)
    yield finding(
        "FILE020",
        f"{index} puts {len(names)} tensor(s) (e.g. {names[0]!r}) in {len(shards)} shard(s) "
        f"{md.loader} never reads (it reads {_pattern(md)}): {', '.join(shards[:3])}"
        f"{', ...' if len(shards) > 3 else ''}; they will be missing at load",
        file=index,
    )


def _pattern(md: ModelDir) -> str:
    if md.loader == "mlx-lm":
        return "model*.safetensors"
    if md.loader == "mlx-vlm":
        return "the index's shards, else *.safetensors except consolidated.safetensors"
    return "*.safetensors"


@rule(
    "FILE004",
    "The index names shards that are not in the directory",
    severity="error",
    fix="The download is incomplete, or the index is stale: download the missing shards, or "
    "regenerate the index from the shards that ship.",
    compares="index weight_map shard names vs files present",
)
@rule(
    "FILE005",
    "Safetensors files that the index does not name",
    severity="warning",
    fix="A stray or duplicate weights file: delete it, or regenerate the index if it belongs.",
    compares="*.safetensors present vs index weight_map shards",
)
@rule(
    "FILE006",
    "Stale index: none of the shards it names are present",
    severity="warning",
    fix="The index was copied from another layout (e.g. the unquantized source). mlx-lm ignores it, "
    "but other tools trust it: regenerate it from the shards that ship, or delete it.",
    compares="index shard names vs the safetensors files that ship",
)
@rule(
    "FILE007",
    "Index total_size differs from the tensor bytes in the shards",
    severity="warning",
    fix="total_size should be the sum of tensor data bytes; a much larger value usually means the "
    "index was copied from the unquantized source. Regenerate it.",
    compares="index metadata.total_size vs sum of (end - begin) over the shard headers",
)
@rule(
    "FILE008",
    "Index and shard headers disagree on which tensors exist",
    severity="warning",
    fix="The index lists tensors that no shard holds (or a shard holds tensors the index does not "
    "list): regenerate the index from the shards.",
    compares="index weight_map names vs tensor names in the headers of the shards it names",
)
def indexes(md: ModelDir) -> Iterator[Finding]:
    if not _directory(md):
        return
    present = md.file_set
    top_st = {f for f in md.top_files if f.endswith(".safetensors")}
    for rel, index in md.indexes.items():
        shards = index.shards
        missing = [s for s in shards if s not in present]
        shipped = [s for s in shards if s in present]
        if missing and not shipped and top_st and not md.metadata_only:
            yield finding(
                "FILE006",
                f"{rel} names {len(shards)} shard(s), none present, while "
                f"{len(top_st)} other safetensors file(s) ship ({', '.join(sorted(top_st)[:3])})"
                + _size_note(md, index.total_size, sorted(top_st))
                + ("; mlx-lm ignores the index and loads them" if md.loader == "mlx-lm" else ""),
                file=rel,
            )
        elif missing and not md.metadata_only:
            yield finding(
                "FILE004",
                f"{rel} names {len(shards)} shard(s); {len(missing)} missing: {', '.join(missing[:4])}",
                file=rel,
            )
        if not missing and not md.metadata_only and top_st:
            extra = sorted(top_st - set(shards))
            if rel.startswith("model.") and extra:
                yield finding(
                    "FILE005",
                    f"{len(extra)} safetensors file(s) not named by {rel}: {', '.join(extra[:4])}"
                    + _reads_anyway(md, extra),
                    file=extra[0],
                )
        if md.metadata_only or missing:
            continue
        headers = {s: md.header(s) for s in shipped}
        if any(h is None for h in headers.values()):
            continue
        actual = sum(t.end - t.begin for h in headers.values() for t in h.tensors.values())
        declared = index.total_size
        if (
            declared is not None
            and abs(declared - actual) > max(actual // 100, 1 << 20)
            and declared != 0
        ):
            ratio = declared / actual if actual else float("inf")
            yield finding(
                "FILE007",
                f"{rel} declares total_size {declared:,} bytes but its shards hold {actual:,} "
                f"bytes of tensors ({ratio:.2f}x)",
                file=rel,
            )
        in_headers: dict[str, str] = {}
        for shard, h in headers.items():
            in_headers.update(dict.fromkeys(h.tensors, shard))
        if in_headers == index.weight_map:
            continue  # every tensor where the index says, and nothing else
        listed = set(index.weight_map)
        not_stored = sorted(listed - set(in_headers))
        not_listed = sorted(set(in_headers) - listed)
        wrong_shard = sorted(
            n for n, s in index.weight_map.items() if n in in_headers and in_headers[n] != s
        )
        if not_stored or not_listed or wrong_shard:
            parts = []
            if not_stored:
                parts.append(f"{len(not_stored)} listed but in no shard (e.g. {not_stored[0]!r})")
            if not_listed:
                parts.append(f"{len(not_listed)} in shards but not listed (e.g. {not_listed[0]!r})")
            if wrong_shard:
                parts.append(
                    f"{len(wrong_shard)} in another shard than listed (e.g. {wrong_shard[0]!r})"
                )
            yield finding("FILE008", f"{rel}: " + "; ".join(parts), file=rel)


def _reads_anyway(md: ModelDir, files: list[str]) -> str:
    read = [f for f in files if f in md.tensor_files]
    if not read:
        return f"; {md.loader} will not read {'it' if len(files) == 1 else 'them'}"
    return f"; {md.loader} reads {len(read)} of them anyway and merges their tensors"


def _size_note(md: ModelDir, declared: int | None, files: list[str]) -> str:
    """'; it declares N bytes, the shipped files hold M' when both are known (a copied index)."""
    if not declared:
        return ""
    headers = [md.header(f) for f in files]
    if any(h is None for h in headers):
        return ""
    held = sum(t.end - t.begin for h in headers if h for t in h.tensors.values())
    if not held:
        return ""
    return f"; it declares {declared:,} bytes, the shipped files hold {held:,} ({declared / held:.2f}x)"


@rule(
    "FILE009",
    "The same tensor is stored in more than one file the loader reads",
    severity="error",
    fix="mx.load merges files and the last one silently wins (diffusers/transformers refuse "
    "'Duplicate tensor names'). Delete the stray file (often a second model.safetensors beside shards).",
    compares="tensor names across every file the loader reads",
)
def duplicates(md: ModelDir) -> Iterator[Finding]:
    if not _directory(md):
        return
    dups = md.duplicate_tensors
    if not dups:
        return
    files = sorted({f for fs in dups.values() for f in fs})
    name = next(iter(dups))
    yield finding(
        "FILE009",
        f"{len(dups)} tensor(s) appear in more than one of {', '.join(files[:4])} "
        f"(e.g. {name!r} in {', '.join(dups[name])})",
        file=files[0],
    )
