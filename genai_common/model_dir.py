"""ModelDir: one model path, its metadata files read lazily and once.

CONTRACT (written before the implementation so the readers and the checks can be built in
parallel; the owner of this module fills in the bodies and may add to it, but keeps these names):

    md = ModelDir.open(path_or_hub_id, metadata_only=False)   # raises ModelPathError (exit 2) only
                                                              # when nothing is there at all
    md.root: Path                 # the directory (for a single-file path: its parent)
    md.display: str               # what the user typed
    md.single_file: Path | None   # set when the path was one .safetensors / .gguf file
    md.metadata_only: bool        # judge configs/tokenizers/index without weight files
    md.files -> list[str]         # every file below root, relative, sorted ('/' separators)
    md.json(rel) -> dict | None   # strict JSON read, cached; None when absent OR malformed;
                                  # malformed input adds a finding to md.read_findings
    md.config -> dict | None      # config.json
    md.text_config -> dict        # config['text_config'] when nested, else config, else {}
    md.vision_config -> dict | None
    md.model_type -> str | None   # config['model_type'] (or text_config's)
    md.tensors -> dict[str, TensorInfo]
                                  # every tensor the loader will read, from safetensors headers
                                  # (never the data); with metadata_only and an index, names from
                                  # the index with shape/dtype None
    md.tensor_files -> list[str]  # the safetensors files the loader reads (mlx-lm: model*.safetensors)
    md.tokenizer -> TokenizerInfo | None
    md.component(name) -> ModelDir   # diffusers component subfolder (unet, vae, text_encoder, ...)
    md.read_findings: list[Finding]  # problems met while reading (bad JSON, bad headers, ...)
    md.kind -> str                # llm | vlm | diffusion | ml | adapter | gguf | unknown
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ModelPathError(Exception):
    """The path cannot be diagnosed at all (not found, not a model path): exit code 2."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str | None  # safetensors dtype string: F32, F16, BF16, U32, I8, ...
    shape: tuple[int, ...] | None
    file: str  # relative path of the file holding it
    nbytes: int | None = None


@dataclass
class TokenizerInfo:
    vocab_size: int | None  # size of the base vocabulary (model vocab in tokenizer.json)
    added_tokens: dict[int, str] = field(default_factory=dict)  # id -> content
    special_tokens: dict[str, str] = field(default_factory=dict)  # role (bos/eos/pad/unk...) -> content
    chat_template: str | None = None
    token_to_id: dict[str, int] = field(default_factory=dict)  # lookups for special/added tokens
    model_max_length: int | None = None
    source: str | None = None  # which file it was read from

    @property
    def size(self) -> int | None:
        """Ids the tokenizer can emit: max(base vocab, highest added id + 1)."""
        if self.vocab_size is None and not self.added_tokens:
            return None
        highest = max(self.added_tokens, default=-1) + 1
        return max(self.vocab_size or 0, highest)


class ModelDir:
    """See the module docstring for the contract."""

    root: Path
    display: str
    single_file: Path | None
    metadata_only: bool
    read_findings: list[Any]

    @classmethod
    def open(cls, path: str | Path, *, metadata_only: bool = False) -> ModelDir:
        raise NotImplementedError("filled in by the doctor issue")
