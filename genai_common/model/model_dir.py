"""ModelDir: one model path, its metadata files read lazily and once, and the typed views of it.

    md = ModelDir.open(path_or_hub_id, metadata_only=False, fetch_metadata=False, kind=None)
                                  # raises ModelPathError (exit 2) only when nothing is there
    md.root / md.root_str         # the directory (for a single-file path: its parent)
    md.display                    # what the user typed
    md.single_file / single_name  # set when the path was one .safetensors / .gguf file
    md.metadata_only              # judge configs/tokenizers/index without weight files
                                  # (auto_metadata_only: chosen because no weights are present)
    md.hub_id / md.revision       # set when the path was a hub id found in the local HF cache
    md.files / file_set / top_files   # every file below root, relative, sorted ('/' separators)
    md.size(rel) / md.readable(rel)   # regular-file size; present, regular, not an LFS pointer
    md.json(rel) / read_text(rel) # strict JSON / a small text file, cached; None when absent or
                                  # malformed (a problem is recorded); a tokenizer.json over 1 MiB
                                  # is a TokenizerJSON without model.vocab and model.merges
                                  # (formats/tokenizer_json.py, cached by file identity)
    md.config / text_config / vision_config / model_type
    md.kind                       # llm | vlm | diffusion | ml | adapter | gguf | unknown
    md.loader                     # mlx-lm | mlx-vlm | diffusers | mlx | gguf | None
    md.tensor_files               # the safetensors files the loader reads, as it chooses them
    md.header(rel) / md.headers   # safetensors headers (never the data)
    md.tensors                    # name -> TensorInfo of every tensor the loader will read; with
                                  # metadata_only and an index, names from the index, shape None
    md.duplicate_tensors, md.index, md.indexes, md.lfs_pointers, md.weight_files, md.gguf
    md.tokenizer                  # TokenizerInfo | None
    md.component(name)            # a diffusers component folder as a ModelDir
    md.read_all()                 # read every file the loader would read (so every problem is
                                  # recorded before anything is judged)
    md.problems                   # Problem(code, message, file) met while reading, in order

Typed views, each built on first use and kept (genai_common/model/*.py):

    md.text      TextModel: dims, text tensors, embedding, head, tie, rope, layer indices
    md.quant     QuantModel: the quantization block, per-layer entries, packed shapes
    md.memory    Memory: weight bytes, KV layout and bytes, VAE decode
    md.pipeline  Pipeline: a diffusers pipeline's components, family, denoiser, configs
    md.vision    Vision: vision tower and projector tensors, vision sizes, image token ids

ModelDir judges nothing: a malformed file is a Problem (a code and a message, as the readers in
genai_common/formats return them) that the doctor's rules turn into findings. It never imports
numpy, safetensors, mlx or torch: everything comes from headers.
"""

from __future__ import annotations

import os
import stat
from collections import namedtuple
from functools import cached_property

from genai_common.formats import FormatError
from genai_common.formats.safetensors import MAX_HEADERS_TOTAL, TensorInfo, read_header
from genai_common.formats.tokenizer import TokenizerInfo
from genai_common.model.hub import (
    cache_repo_snapshot,
    download_metadata,
    hub_cache_dir,
    resolve_hub_cache,
    split_hub_id,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from genai_common.formats.gguf import GGUFInfo
    from genai_common.formats.index import IndexInfo
    from genai_common.formats.safetensors import SafetensorsHeader
    from genai_common.model.memory import Memory
    from genai_common.model.pipeline import Pipeline
    from genai_common.model.quant import QuantModel
    from genai_common.model.text import TextModel
    from genai_common.model.vision import Vision

__all__ = ["ModelDir", "ModelPathError", "Problem", "TensorInfo", "TokenizerInfo"]

MAX_FILES = 20_000  # a model directory has tens of files; stop listing a home directory early
MAX_DEPTH = 4
# Files whose presence rules judge by name: looked up directly when the listing was cut.
TOP_LEVEL_NAMES = (
    "config.json",
    "model_index.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "processor_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "adapter_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "adapters.safetensors",
)
TEXT_CAP = 4 * 1024 * 1024
JSON_CAP_BIG = 256 * 1024 * 1024  # tokenizer.json of large vocabularies is tens of MB
# Other JSON files, by kind (issue 15: bounded time and memory; a 19 MB config.json of 1M keys
# took 4.1 s and 296 MB, a 53 MB tokenizer_config.json 7.3 s and 582 MB, a 65 MB index 6.0 s and
# 459 MB). Real sizes: configs KBs (tokenizer_config.json with thousands of added tokens, ~1 MB:
# Gemma 3's 1.16 MB); indexes ~100 bytes a tensor (DeepSeek-V3 8.9 MB, a 200,000-tensor MoE ~20 MB).
JSON_CAP_INDEX = 48 * 1024 * 1024
JSON_CAP_CONFIG = 16 * 1024 * 1024
VLM_KEYS = (
    "vision_config",
    "vision_tower",
    "mm_vision_tower",
    "mm_projector_type",
    "image_token_index",
    "image_token_id",
)


class Problem(namedtuple("Problem", "code message file")):
    """A problem met while reading: a code (JSON002, HDR003, ...), a message, the file it is in
    (relative to the top model directory) or None."""

    __slots__ = ()
    code: str
    message: str
    file: str | None


class ModelPathError(Exception):
    """The path cannot be diagnosed at all (not found, not a model path): exit code 2."""


class ModelDir:
    """See the module docstring for the contract."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        display: str,
        *,
        single_file: str | os.PathLike[str] | None = None,
        metadata_only: bool = False,
        prefix: str = "",
        problems: list[Problem] | None = None,
        loader: str | None = None,
        kind: str | None = None,
    ) -> None:
        self.root_str = os.fspath(root)
        self.display = display
        self._single = os.fspath(single_file) if single_file is not None else None
        self.single_name = os.path.basename(self._single) if self._single is not None else None
        self.metadata_only = metadata_only
        self.prefix = prefix  # "unet/" for a component: findings name files from the top
        self.problems: list[Problem] = problems if problems is not None else []
        self.hub_id: str | None = None
        self.revision: str | None = None
        self.auto_metadata_only = False
        self._loader = loader
        self._kind = kind
        self._json: dict[str, Any] = {}
        self._headers: dict[str, Any] = {}
        self._sizes: dict[str, int | None] = {}
        self._components: dict[str, ModelDir] = {}
        self._reported: set[tuple[str, str]] = set()
        # bytes of safetensors headers still to be read, shared with the components (SEC020)
        self._header_budget = [MAX_HEADERS_TOTAL]

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        metadata_only: bool = False,
        fetch_metadata: bool = False,
        kind: str | None = None,
    ) -> ModelDir:
        text = str(path)
        local = _pure(os.path.expanduser(text))
        name = os.path.basename(local)
        md: ModelDir
        if os.path.exists(local):
            if (
                name.startswith("models--")
                and os.path.isdir(local)
                and os.path.isdir(os.path.join(local, "snapshots"))
            ):  # a cache repo folder: its snapshot
                from pathlib import Path

                local = str(cache_repo_snapshot(Path(local)) or local)
                name = os.path.basename(local)
            parent = os.path.dirname(local) or "."
            if os.path.isdir(local):
                md = cls(local, text, metadata_only=metadata_only, kind=kind)
            elif os.path.splitext(name)[1] in (".safetensors", ".gguf"):
                md = cls(parent, text, single_file=local, metadata_only=False, kind=kind)
            elif name in ("config.json", "model_index.json") or name.endswith(
                ".safetensors.index.json"
            ):  # a model's own metadata file: diagnose its directory
                md = cls(parent, text, metadata_only=metadata_only, kind=kind)
            else:
                raise ModelPathError(
                    f"{text} is a file but not a .safetensors or .gguf file: give the model directory"
                )
        else:
            hub = split_hub_id(text) if not text.startswith((".", "/", "~")) else None
            if hub is None:
                raise ModelPathError(f"{text}: no such file or directory")
            repo_id, revision = hub
            snapshot = None
            fetch_error = None
            if fetch_metadata:
                try:
                    snapshot = download_metadata(repo_id, revision)
                except Exception as exc:  # network, auth, offline: fall back to the cache
                    fetch_error = exc
            snapshot = snapshot or resolve_hub_cache(repo_id, revision)
            if snapshot is None:
                why = (
                    f" (--fetch-metadata failed: {type(fetch_error).__name__}: {fetch_error})"
                    if fetch_error
                    else ""
                )
                hint = (
                    ""
                    if fetch_metadata
                    else "; pass --fetch-metadata to download its configs and tokenizer files only"
                )
                raise ModelPathError(
                    f"{text}: not a local path, and not found in the Hugging Face cache at "
                    f"{hub_cache_dir()}{why}{hint}"
                )
            md = cls(snapshot, text, metadata_only=metadata_only or fetch_metadata, kind=kind)
            md.hub_id, md.revision = repo_id, revision
            if fetch_error is not None:
                md._note(
                    "FILE050",
                    f"--fetch-metadata could not reach the hub ({type(fetch_error).__name__}); "
                    "judged the cached snapshot",
                    None,
                )
        has_metadata = (
            md.config is not None or "model_index.json" in md.file_set or md.kind == "diffusion"
        )
        if not md.metadata_only and md._single is None and not md.weight_files and has_metadata:
            md.metadata_only = True
            md.auto_metadata_only = True
        return md

    # ------------------------------------------------------------------ paths
    @cached_property
    def root(self) -> Path:
        from pathlib import Path

        return Path(self.root_str)

    @cached_property
    def single_file(self) -> Path | None:
        from pathlib import Path

        return Path(self._single) if self._single is not None else None

    def fspath(self, rel: str) -> str:
        """A file below the root, as a str (os.path: no pathlib on the static path)."""
        return os.path.join(self.root_str, rel)

    # ------------------------------------------------------------------ files
    def rel(self, name: str) -> str:
        """A file name as findings show it: relative to the top model directory."""
        return self.prefix + name

    @cached_property
    def files(self) -> list[str]:
        if self.single_name is not None:
            return [self.single_name]
        out: list[str] = []
        root = self.root_str
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            depth = 0 if dirpath == root else os.path.relpath(dirpath, root).count(os.sep) + 1
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and depth < MAX_DEPTH)
            base = (
                "" if dirpath == root else os.path.relpath(dirpath, root).replace(os.sep, "/") + "/"
            )
            for name in filenames:
                out.append(base + name)
                if len(out) >= MAX_FILES:
                    return self._cut_listing(out)
            # symlinked folders (the hub cache links files, not folders) are listed, not walked
        return sorted(out)

    def _cut_listing(self, listed: list[str]) -> list[str]:
        """The listing stopped at MAX_FILES (in directory order): say so, and add the top-level
        files every judgement of presence depends on, so that none is reported missing only
        because the walk never reached it."""
        present = set(listed)
        for name in TOP_LEVEL_NAMES:
            if name not in present and os.path.isfile(os.path.join(self.root_str, name)):
                listed.append(name)
        self._note(
            "FILE022",
            f"{self.display} holds more than {MAX_FILES:,} files: the listing stopped there, so "
            "files beyond it are not judged (a model directory has tens of files)",
            None,
        )
        return sorted(listed)

    @cached_property
    def file_set(self) -> set[str]:
        return set(self.files)

    @cached_property
    def top_files(self) -> list[str]:
        return [f for f in self.files if "/" not in f]

    def size(self, rel: str) -> int | None:
        """Size of a regular file (links followed); None when missing, a broken link, or not a
        regular file (a FIFO or device would block or never end: never opened)."""
        if rel not in self._sizes:
            try:
                st = os.stat(os.path.join(self.root_str, rel))
            except OSError:
                self._sizes[rel] = None
            else:
                self._sizes[rel] = st.st_size if stat.S_ISREG(st.st_mode) else None
        return self._sizes[rel]

    def readable(self, rel: str) -> bool:
        """A regular file that is present and not a Git-LFS pointer: safe to open."""
        return rel in self.file_set and self.size(rel) is not None and rel not in self.lfs_pointers

    @cached_property
    def weight_files(self) -> list[str]:
        from genai_common.formats.files import WEIGHT_SUFFIXES

        return [f for f in self.files if f.endswith(WEIGHT_SUFFIXES)]

    @cached_property
    def weight_dirs(self) -> list[str]:
        """Paths named like weight files (model.safetensors, x.gguf, pytorch_model.bin) that are
        directories: '.' when the path given is one, else such folders at the top or in a
        component folder. No loader reads them, and the file listing never shows them."""
        from genai_common.formats.files import WEIGHT_SUFFIXES

        if self.single_name is not None:
            return []
        if os.path.basename(self.root_str.rstrip("/\\")).endswith(WEIGHT_SUFFIXES):
            return ["."]
        out: list[str] = []
        folders = ["", *sorted({f.split("/", 1)[0] + "/" for f in self.files if "/" in f})]
        for base in folders:
            try:
                with os.scandir(os.path.join(self.root_str, base)) as entries:
                    out += [
                        base + e.name
                        for e in entries
                        if e.name.endswith(WEIGHT_SUFFIXES) and e.is_dir(follow_symlinks=True)
                    ]
            except OSError:
                continue
        return sorted(out)

    @cached_property
    def lfs_pointers(self) -> dict[str, dict[str, str]]:
        from genai_common.formats.files import LFS_MAX_BYTES, lfs_pointer

        out: dict[str, dict[str, str]] = {}
        for rel in self.files:
            size = self.size(rel)
            if size is not None and 0 < size <= LFS_MAX_BYTES:
                fields = lfs_pointer(self.fspath(rel), size)
                if fields is not None:
                    out[rel] = fields
        return out

    # ------------------------------------------------------------------ findings from reading
    def _note(self, code: str, message: str, rel: str | None) -> None:
        """Record a problem met while reading (once per code and message)."""
        key = (code, message)
        if key in self._reported:
            return
        self._reported.add(key)
        self.problems.append(Problem(code, message, self.rel(rel) if rel else None))

    # ------------------------------------------------------------------ JSON and text
    def json(self, rel: str) -> dict | None:
        if rel in self._json:
            return self._json[rel]
        value = None
        if self.readable(rel):
            from genai_common.formats.jsonfile import read_json

            cap, reader = JSON_CAP_CONFIG, read_json
            options = {"fast_limit": JSON_CAP_INDEX}  # the hook-free read at any size
            if rel.endswith(".index.json"):
                cap = JSON_CAP_INDEX
            elif rel.endswith("tokenizer.json"):  # large ones: fast, cached, same findings
                from genai_common.formats.tokenizer_json import read_tokenizer_json

                cap, reader, options = JSON_CAP_BIG, read_tokenizer_json, {}
            try:
                value, problems = reader(
                    self.fspath(rel), max_bytes=cap, what=self.rel(rel), **options
                )
            except FormatError as exc:
                self._note(exc.code, exc.message, rel)
            else:
                for code, message in problems:
                    self._note(code, message, rel)
        self._json[rel] = value
        return value

    def read_text(self, rel: str) -> str | None:
        """A small text file (chat_template.jinja), capped; None when absent or unreadable."""
        if not self.readable(rel):
            return None
        size = self.size(rel)
        if size is None:
            return None
        try:
            with open(self.fspath(rel), "rb") as fh:
                raw = fh.read(min(size, TEXT_CAP) + 1)
        except OSError:
            return None
        if len(raw) > TEXT_CAP:
            self._note(
                "JSON006", f"{self.rel(rel)} is over the {TEXT_CAP:,}-byte cap for text files", rel
            )
            return None
        return raw.decode("utf-8", "replace")

    def _bytes(self, rel: str, cap: int = 64 * 1024 * 1024) -> bytes | None:
        if not self.readable(rel):
            return None
        size = self.size(rel)
        if size is None or size > cap:
            return None
        try:
            with open(self.fspath(rel), "rb") as fh:
                return fh.read()
        except OSError:
            return None

    # ------------------------------------------------------------------ configs
    @cached_property
    def config(self) -> dict | None:
        return self.json("config.json")

    @cached_property
    def text_config(self) -> dict:
        cfg = self.config
        if not cfg:
            return {}
        for key in ("text_config", "llm_config", "language_config"):
            nested = cfg.get(key)
            if isinstance(nested, dict) and nested:
                return nested
        return cfg

    @cached_property
    def vision_config(self) -> dict | None:
        cfg = self.config or {}
        nested = cfg.get("vision_config")
        return nested if isinstance(nested, dict) else None

    @cached_property
    def model_type(self) -> str | None:
        cfg = self.config or {}
        for source in (cfg, self.text_config):
            value = source.get("model_type")
            if isinstance(value, str) and value:
                return value
        return None

    # ------------------------------------------------------------------ kind and loader
    @cached_property
    def kind(self) -> str:
        if self._kind:
            return self._kind
        if self.single_name is not None:
            return "gguf" if self.single_name.endswith(".gguf") else "ml"
        files = self.file_set
        if "model_index.json" in files:
            return "diffusion"
        cfg = self.config
        has_st = any(f.endswith(".safetensors") for f in self.top_files)
        if "adapter_config.json" in files and cfg is None:
            return "adapter"
        if cfg is None and self.component_folders:
            return "diffusion"  # a pipeline's component folders without their model_index.json
        if cfg is None:
            if any(f.endswith(".gguf") for f in self.top_files):
                return "gguf"
            if "config.json" in files:  # present but malformed: still judge it as a model
                return "unknown"
            return "ml" if has_st else "unknown"
        if any(_present(cfg.get(k)) for k in VLM_KEYS):
            return "vlm"
        text = self.text_config
        archs = cfg.get("architectures") if isinstance(cfg.get("architectures"), list) else []
        if "vocab_size" in text or any(
            isinstance(a, str) and ("CausalLM" in a or "LMHead" in a) for a in archs
        ):
            return "llm"
        if self.model_type and self.model_type in _mlx_lm_model_types():
            return "llm"
        if has_st or self.model_type:
            return "ml"
        return "unknown"

    @cached_property
    def component_folders(self) -> dict[str, tuple[str, str | None]]:
        """Without config.json and model_index.json: the top folders that are saved pipeline
        components, folder -> (library, class), when at least two are and one of them was written
        by diffusers (every diffusers config carries _diffusers_version; a scheduler is saved as
        scheduler_config.json). {} otherwise (then this is no pipeline)."""
        if self.single_name is not None or "model_index.json" in self.file_set:
            return {}
        folders = sorted({f.split("/", 1)[0] for f in self.files if f.count("/") == 1})
        if len(folders) < 2 or "config.json" in self.file_set:
            return {}
        out: dict[str, tuple[str, str | None]] = {}
        for folder in folders:
            found = _component_of(self, folder)
            if found is not None:
                out[folder] = found
        if len(out) < 2 or not any(lib == "diffusers" for lib, _ in out.values()):
            return {}
        return out

    @property
    def loader(self) -> str | None:
        if self._loader:
            return self._loader
        if self.kind == "ml" and "_diffusers_version" in (self.config or {}):
            return "diffusers"  # one diffusers component folder given on its own
        return {
            "llm": "mlx-lm",
            "vlm": "mlx-vlm",
            "diffusion": "diffusers",
            "ml": "mlx",
            "gguf": "gguf",
            "adapter": "mlx-lm",
        }.get(self.kind)

    # ------------------------------------------------------------------ weights
    @cached_property
    def indexes(self) -> dict[str, IndexInfo]:
        from genai_common.formats.index import index_from_json

        out: dict[str, IndexInfo] = {}
        for rel in self.top_files:
            if not rel.endswith(".safetensors.index.json") or not self.readable(rel):
                continue
            data = self.json(rel)  # parsed once, shared with the JSON checks; malformed: noted
            if data is None:
                continue
            try:
                info = index_from_json(data, path=self.fspath(rel), what=self.rel(rel))
            except FormatError as exc:
                self._note(exc.code, exc.message, rel)
                continue
            for code, message in info.problems:
                self._note(code, message, rel)
            out[rel] = info
        return out

    @cached_property
    def index(self) -> IndexInfo | None:
        indexes = self.indexes
        for name in (
            "model.safetensors.index.json",
            "diffusion_pytorch_model.safetensors.index.json",
        ):
            if name in indexes:
                return indexes[name]
        return next(iter(indexes.values()), None) if len(indexes) == 1 else None

    @cached_property
    def tensor_files(self) -> list[str]:
        """The safetensors files the loader reads, as it would choose them."""
        if self.single_name is not None:
            return [self.single_name] if self.single_name.endswith(".safetensors") else []
        top = [f for f in self.top_files if f.endswith(".safetensors")]
        loader = self.loader
        if self.metadata_only:
            index = self.index
            return index.shards if index is not None else []
        if loader == "mlx-lm":  # globs model*.safetensors: never reads the index
            if self.kind == "adapter":
                return [f for f in top if f.startswith("adapter")]
            # fnmatch "model*.safetensors", without a regex call per file
            return [f for f in top if f.startswith("model") and f.endswith(".safetensors")]
        if loader in ("mlx-vlm", "diffusers"):
            index = self.index
            if index is not None:
                present = [s for s in index.shards if s in self.file_set]
                if present:
                    return present
            if loader == "diffusers":
                return _diffusers_weights(top)
            return [f for f in top if f != "consolidated.safetensors"]
        return top

    @cached_property
    def unread_shards(self) -> dict[str, list[str]]:
        """Shards the index maps tensors to that the loader's own file selection never reads
        (shard -> its tensors): mlx-lm globs model*.safetensors and never reads the index, so a
        shard named otherwise (weights-00001-of-00002.safetensors, a subfolder) is skipped and
        its tensors are missing at load. {} for the loaders that follow the index."""
        index = self.index
        if index is None or self.loader != "mlx-lm" or self.kind == "adapter":
            return {}
        out: dict[str, list[str]] = {}
        for name, shard in index.weight_map.items():
            if not (
                shard.startswith("model") and shard.endswith(".safetensors") and "/" not in shard
            ):
                out.setdefault(shard, []).append(name)
        return out

    @cached_property
    def pickle_indexes(self) -> list[str]:
        """Top-level indexes of pickled shards (pytorch_model.bin.index.json)."""
        return [f for f in self.top_files if f.endswith((".bin.index.json", ".pt.index.json"))]

    def header(self, rel: str) -> SafetensorsHeader | None:
        """The safetensors header of one file (cached); None when missing or unreadable."""
        if rel in self._headers:
            return self._headers[rel]
        header = None
        if self.readable(rel):
            budget = self._header_budget
            try:
                header = read_header(self.fspath(rel), what=self.rel(rel), budget=budget[0])
            except FormatError as exc:
                self._note(exc.code, exc.message, rel)
            else:
                budget[0] -= header.header_len
                for code, message in header.problems:
                    self._note(code, message, rel)
        self._headers[rel] = header
        return header

    @cached_property
    def headers(self) -> dict[str, SafetensorsHeader]:
        if self.metadata_only:
            return {}
        out = {}
        for rel in self.tensor_files:
            header = self.header(rel)
            if header is not None:
                out[rel] = header
        return out

    @cached_property
    def _tensor_table(self) -> tuple[dict[str, TensorInfo], dict[str, list[str]]]:
        tensors: dict[str, TensorInfo] = {}
        duplicates: dict[str, list[str]] = {}
        if self.metadata_only:
            index = self.index
            if index is not None:
                for name, shard in index.weight_map.items():
                    tensors[name] = TensorInfo(name, None, None, self.rel(shard))
            return tensors, duplicates
        headers = self.headers.values()
        for header in headers:  # one merge; sizes that add up prove no name is in two files
            tensors.update(header.tensors)
        if len(tensors) == sum(len(header.tensors) for header in headers):
            return tensors, duplicates
        tensors = {}
        for header in headers:
            if not tensors.keys().isdisjoint(header.tensors):
                for name in tensors.keys() & header.tensors.keys():
                    seen = duplicates.setdefault(name, [tensors[name].file])
                    seen.append(header.tensors[name].file)
            tensors.update(header.tensors)
        return tensors, duplicates

    @property
    def tensors(self) -> dict[str, TensorInfo]:
        return self._tensor_table[0]

    @property
    def duplicate_tensors(self) -> dict[str, list[str]]:
        return self._tensor_table[1]

    @cached_property
    def gguf(self) -> GGUFInfo | None:
        if self.single_name is not None and self.single_name.endswith(".gguf"):
            rel = self.single_name
        else:
            rel = next((f for f in self.top_files if f.endswith(".gguf")), None)
        if rel is None or not self.readable(rel):
            return None
        from genai_common.formats.gguf import read_gguf

        try:
            info = read_gguf(self.fspath(rel), what=self.rel(rel))
        except FormatError as exc:
            self._note(exc.code, exc.message, rel)
            return None
        for code, message in info.problems:
            self._note(code, message, rel)
        return info

    # ------------------------------------------------------------------ tokenizer, components
    @cached_property
    def tokenizer(self) -> TokenizerInfo | None:
        from genai_common.formats.tokenizer import read_tokenizer

        info, problems = read_tokenizer(self.json, self.read_text, self._bytes, self.file_set)
        for code, message in problems:
            self._note(code, message, info.source if info and info.source else None)
        return info

    def component(self, name: str) -> ModelDir:
        """A diffusers component folder (unet, vae, text_encoder, tokenizer, scheduler, ...)."""
        if name not in self._components:
            sub = ModelDir(
                self.fspath(name),
                f"{self.display}/{name}",
                metadata_only=self.metadata_only,
                prefix=f"{self.prefix}{name}/",
                problems=self.problems,
                loader="diffusers",
                kind="ml",
            )
            sub._reported = self._reported
            sub._header_budget = self._header_budget
            self._components[name] = sub
        return self._components[name]

    # ------------------------------------------------------------------ reading everything
    def read_all(self) -> ModelDir:
        """Read every metadata file and every header the loader will read, once, so that every
        problem is recorded before anything is judged (the doctor's first step)."""
        for rel in self.files:
            if rel.endswith(".json") and rel.count("/") <= 1:
                self.json(rel)
        _ = self.tokenizer, self.indexes
        if self.kind == "gguf" or any(f.endswith(".gguf") for f in self.top_files):
            _ = self.gguf
        if not self.metadata_only:
            _ = self.tensors
        if self.kind == "diffusion":
            for name in self.pipeline.components:
                if os.path.isdir(self.fspath(name)):
                    comp = self.component(name)
                    _ = comp.indexes
                    if not comp.metadata_only:
                        _ = comp.tensors
        return self

    # ------------------------------------------------------------------ typed views
    @cached_property
    def text(self) -> TextModel:
        from genai_common.model.text import TextModel

        return TextModel(self)

    @cached_property
    def quant(self) -> QuantModel:
        from genai_common.model.quant import QuantModel

        return QuantModel(self)

    @cached_property
    def memory(self) -> Memory:
        from genai_common.model.memory import Memory

        return Memory(self)

    @cached_property
    def pipeline(self) -> Pipeline:
        from genai_common.model.pipeline import Pipeline

        return Pipeline(self)

    @cached_property
    def vision(self) -> Vision:
        from genai_common.model.vision import Vision

        return Vision(self)

    def __repr__(self) -> str:
        return f"ModelDir({self.display!r}, kind={self.kind!r})"


def _pure(path: str) -> str:
    """`path` as pathlib prints it: no empty or '.' parts, no trailing slash ('' is '.')."""
    head = "/" if path.startswith("/") else ""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return head + "/".join(parts) if parts else (head or ".")


def _component_of(md: ModelDir, folder: str) -> tuple[str, str | None] | None:
    """(library, class) of a folder saved as a pipeline component, from its own files: a
    diffusers config (_class_name, _diffusers_version) or scheduler config, a transformers model
    config (architectures), tokenizer or image-processor files; None for any other folder."""
    files = md.file_set
    for name in ("config.json", "scheduler_config.json"):
        if f"{folder}/{name}" not in files:
            continue
        data = md.json(f"{folder}/{name}") or {}
        cls = data.get("_class_name")
        if "_diffusers_version" in data or name == "scheduler_config.json":
            return "diffusers", cls if isinstance(cls, str) else None
        archs = data.get("architectures")
        if isinstance(archs, list) and archs and isinstance(archs[0], str):
            return "transformers", archs[0]
        if isinstance(data.get("model_type"), str):
            return "transformers", None
    if f"{folder}/tokenizer_config.json" in files or f"{folder}/tokenizer.json" in files:
        data = md.json(f"{folder}/tokenizer_config.json") or {}
        cls = data.get("tokenizer_class")
        return "transformers", cls if isinstance(cls, str) else None
    if f"{folder}/preprocessor_config.json" in files:
        data = md.json(f"{folder}/preprocessor_config.json") or {}
        cls = data.get("image_processor_type") or data.get("feature_extractor_type")
        return "transformers", cls if isinstance(cls, str) else None
    return None


def _present(value: Any) -> bool:
    return value is not None and value != {} and value != ""


def _diffusers_weights(top: list[str]) -> list[str]:
    """diffusers reads diffusion_pytorch_model.safetensors (or a transformers model.safetensors);
    variant files (name.fp16.safetensors) only when asked for that variant."""
    plain = [f for f in top if f.count(".") == 1]
    return plain or top


def _mlx_lm_model_types() -> frozenset[str]:
    """Model types the installed mlx-lm has a module for (listed from its folder, not imported)."""
    from genai_common.model.loaders import supported

    info = supported("mlx_lm")
    return info[0] if info is not None else frozenset()
