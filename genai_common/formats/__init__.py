"""Readers of model metadata that never load weights.

Each reader takes a path and returns plain data, or raises `FormatError` with a stable check code
(the codes are registered in genai_common/checks/formats.py and checks/gguf.py). Work is bounded:
every length read from a file is checked against the file size and a cap *before* anything is
allocated, so a hostile file cannot make a reader allocate more than its cap or run for long.

    jsonfile.read_json(path)            strict JSON object (UTF-8, no NaN, no duplicate keys, capped)
    safetensors.read_header(path)       tensor names, dtypes, shapes and offsets from the header
    index.read_index(path)              *.safetensors.index.json weight_map and total_size
    gguf.read_gguf(path)                GGUF header: version, metadata, tensor infos
    tokenizer.read_tokenizer(files)     TokenizerInfo from tokenizer.json / tokenizer_config.json ...
    files.lfs_pointer(path) / partial   Git-LFS pointers and unfinished downloads
"""

from __future__ import annotations


class FormatError(Exception):
    """A file that cannot be read as what it claims to be. `code` is a registered check code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# One problem that does not stop the reader (the data is still returned): (code, message).
Problem = tuple[str, str]
