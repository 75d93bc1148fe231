"""TOK: the tokenizer against the embedding, and special tokens across the three config files.

Embedding rows come from the stored embedding (or vocab_size with --metadata-only). A tokenizer
that can emit an id at or above the rows indexes past the table (error); rows beyond the tokenizer
are padding (Qwen 151936 vs 151665, Phi-3 32064 vs 32011: info). mlx-lm's load_config lets
generation_config.json's eos_token_id override config.json's, so disagreements are reported with
the value that wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model import ModelDir


ROLES = ("bos", "eos", "pad")
# Token literals in a chat template: <|im_start|>, <|eot_id|>, <start_of_turn>, [INST], ...
# (patterns are compiled where they are used, through re's cache: nothing at import)
TEMPLATE_TOKEN_PATTERN = (
    r"<\|[^\s|<>'\"]+\|?>|<(?:start|end)_of_turn>|\[/?INST\]|<\|?(?:im|eot|eom)_[a-z]+\|?>"
)
ID_KEY_PATTERN = r"(_token_id|_token_index|_token_ids)$"


def embedding_rows(md: ModelDir) -> tuple[int | None, str]:
    """(rows, what they came from): the stored embedding, else the config's vocab_size."""
    emb = md.text.embedding
    if emb is not None and emb.shape:
        return emb.shape[0], emb.name
    return md.text.dims.vocab, "vocab_size"


def _ids(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def config_token_ids(md: ModelDir) -> list[tuple[str, str, int]]:
    """(file, key, id) for every token id in config.json (and text_config) and generation_config."""
    out: list[tuple[str, str, int]] = []
    cfg = md.config or {}
    sources: list[tuple[str, str, dict]] = [("config.json", "", cfg)]
    tc = cfg.get("text_config")
    if isinstance(tc, dict):
        sources.append(("config.json", "text_config.", tc))
    gen = md.json("generation_config.json")
    if isinstance(gen, dict):
        sources.append(("generation_config.json", "", gen))
    for file, prefix, data in sources:
        for key, value in data.items():
            if re.search(ID_KEY_PATTERN, key):
                out.extend((file, prefix + key, i) for i in _ids(value))
    return out


@rule(
    "TOK001",
    "No tokenizer files",
    severity="warning",
    fix="Copy the tokenizer files (tokenizer.json, tokenizer_config.json, ...) from the original "
    "model; loaders fail without them.",
    compares="tokenizer.json / tokenizer.model / vocab.json / tokenizer_config.json present",
)
def files(md: ModelDir) -> Iterator[Finding]:
    if md.tokenizer is None and md.config is not None:
        yield finding(
            "TOK001", "no tokenizer.json, tokenizer.model, vocab.json or tokenizer_config.json"
        )


@rule(
    "TOK002",
    "The vocabulary file the tokenizer class is built from is missing",
    severity="error",
    fix="Copy the missing file from the original model (usually tokenizer.json). Without it "
    "AutoTokenizer.from_pretrained fails, and its advice to install sentencepiece or tiktoken does "
    "not help: the file is not there to convert.",
    compares="tokenizer_config.json tokenizer_class vs the files it can be built from "
    "(tokenizer.json, or the slow files its VOCAB_FILES_NAMES names in the installed "
    "transformers; without it any of tokenizer.json, tokenizer.model, spiece.model, "
    "vocab.json + merges.txt, vocab.txt)",
)
def vocabulary(md: ModelDir) -> Iterator[Finding]:
    from genai_common.model.loaders import vocabulary_files

    if md.tokenizer is None or "tokenizer.json" in md.file_set:
        return  # TOK001: no tokenizer files at all; tokenizer.json builds every class
    cfg = md.json("tokenizer_config.json") or {}
    cls = cfg.get("tokenizer_class")
    cls = cls if isinstance(cls, str) else None
    alternatives, source = vocabulary_files(cls)
    files = md.file_set
    if any(all(f in files for f in option) for option in alternatives):
        return
    options = " or ".join(" + ".join(option) for option in alternatives)
    present = [
        f for f in ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt") if f in files
    ]
    yield finding(
        "TOK002",
        (f"tokenizer_config.json names {cls}, built from " if cls else "the tokenizer needs ")
        + options
        + (f" ({source})" if source else "")
        + ": none is here"
        + (f" (only {', '.join(present)})" if present else "")
        + "; AutoTokenizer.from_pretrained will fail",
        file="tokenizer_config.json" if "tokenizer_config.json" in files else None,
    )


@rule(
    "TOK010",
    "The tokenizer can emit ids beyond the embedding",
    severity="error",
    fix="Resize the embedding (and lm_head) to the tokenizer and update vocab_size, or remove the "
    "added tokens; otherwise those ids index past the table.",
    compares="tokenizer size (base vocab + added tokens) vs embedding rows",
)
@rule(
    "TOK011",
    "The embedding is padded beyond the tokenizer",
    severity="info",
    fix="Informational: rows above the tokenizer's size are never produced by tokenizing, but "
    "sampling can still pick them; mask them if generation emits unknown ids.",
    compares="embedding rows vs tokenizer size",
)
def size(md: ModelDir) -> Iterator[Finding]:
    tok = md.tokenizer
    if tok is None or tok.size is None or tok.vocab_size is None:
        return  # no base vocabulary was read (TOK002 says when its file is missing)
    rows, what = embedding_rows(md)
    if rows is None:
        return
    size = tok.size
    base = tok.vocab_size
    detail = (
        f"base vocabulary {base}, {len(tok.added_tokens)} added tokens"
        if base is not None
        else f"{len(tok.added_tokens)} added tokens"
    )
    if size > rows:
        beyond = sorted(i for i in tok.added_tokens if i >= rows)
        yield finding(
            "TOK010",
            f"tokenizer size {size} ({detail}) > {rows} rows in {what}"
            + (f"; ids {beyond[:5]} are out of range" if beyond else ""),
            file=tok.source,
        )
    elif rows > size:
        yield finding(
            "TOK011",
            f"{what} has {rows} rows, the tokenizer uses {size} ({detail}): {rows - size} padding rows",
            file=tok.source,
        )


@rule(
    "TOK020",
    "A token id lies outside the embedding",
    severity="error",
    fix="Fix the id (it must be below the embedding rows), or resize the embedding to cover it.",
    compares="every *_token_id / *_token_index / eos list entry in config.json, text_config, "
    "generation_config.json vs embedding rows",
)
@rule(
    "TOK021",
    "A token id is negative",
    severity="warning",
    fix="Use null for 'no such token' (transformers keeps -1 only as a legacy convention).",
    compares="*_token_id values < 0",
)
def id_range(md: ModelDir) -> Iterator[Finding]:
    rows, what = embedding_rows(md)
    for file, key, value in config_token_ids(md):
        if value < 0:
            yield finding("TOK021", f"{file}: {key} = {value}", file=file)
        elif rows is not None and value >= rows:
            yield finding("TOK020", f"{file}: {key} = {value} >= {rows} rows in {what}", file=file)


def _role_ids(md: ModelDir) -> dict[str, dict[str, set[int]]]:
    """role -> {file: ids} from the three files (tokenizer tokens mapped through the vocab)."""
    out: dict[str, dict[str, set[int]]] = {r: {} for r in ROLES}
    cfg = md.config or {}
    tc = md.text_config or {}
    gen = md.json("generation_config.json") or {}
    for role in ROLES:
        key = f"{role}_token_id"
        for file, data in (
            ("config.json", cfg),
            ("config.json", tc),
            ("generation_config.json", gen),
        ):
            ids = _ids(data.get(key)) if isinstance(data, dict) else []
            if ids:
                out[role].setdefault(file, set()).update(ids)
        tok = md.tokenizer
        content = tok.special_tokens.get(role) if tok is not None else None
        if content is not None and tok is not None:
            tid = _id_of(tok, content)
            if tid is not None:
                out[role]["tokenizer_config.json"] = {tid}
    return out


def _id_of(tok: Any, content: str) -> int | None:
    lookup = getattr(tok, "id_of", None)
    if callable(lookup):
        return lookup(content)
    return tok.token_to_id.get(content)


@rule(
    "TOK030",
    "Special token ids disagree across config.json, generation_config.json, tokenizer_config.json",
    severity="warning",
    fix="Make bos/eos/pad agree in the three files; for stopping, generation_config.json's "
    "eos_token_id wins in mlx-lm, and a chat model's end-of-turn token must be in it.",
    compares="bos/eos/pad ids in config.json and generation_config.json vs tokenizer_config.json "
    "tokens mapped through the vocabulary",
)
@rule(
    "TOK032",
    "pad token is the eos token",
    severity="info",
    fix="Fine for inference; for fine-tuning, a pad equal to eos masks the eos out of the loss.",
    compares="pad id vs eos ids",
)
def agreement(md: ModelDir) -> Iterator[Finding]:
    roles = _role_ids(md)
    for role in ROLES:
        by_file = roles[role]
        cfg_ids = by_file.get("config.json")
        gen_ids = by_file.get("generation_config.json")
        tok_ids = by_file.get("tokenizer_config.json")
        # generation_config may list more stop ids than config.json (Llama-3, Qwen2-VL): fine.
        if cfg_ids and gen_ids and not cfg_ids <= gen_ids:
            wins = " (generation_config.json wins in mlx-lm)" if role == "eos" else ""
            yield finding(
                "TOK030",
                f"{role}_token_id: config.json {sorted(cfg_ids)} vs generation_config.json "
                f"{sorted(gen_ids)}{wins}",
                file="generation_config.json",
            )
        if tok_ids:
            effective = gen_ids or cfg_ids
            if effective and not tok_ids <= effective:
                token = md.tokenizer.special_tokens.get(role) if md.tokenizer else None
                yield finding(
                    "TOK030",
                    f"tokenizer_config.json {role}_token {token!r} is id {sorted(tok_ids)[0]} but "
                    f"the model's {role}_token_id is {sorted(effective)}"
                    + (" (generation will not stop on it)" if role == "eos" else ""),
                    file="tokenizer_config.json",
                )
    pad_ids = _effective(roles["pad"])
    eos_ids = set().union(*roles["eos"].values()) if roles["eos"] else set()
    if pad_ids and pad_ids <= eos_ids:
        yield finding("TOK032", f"pad_token_id {sorted(pad_ids)} is also an eos id")


def _effective(by_file: dict[str, set[int]]) -> set[int]:
    """The ids a loader uses: generation_config.json, else config.json, else the tokenizer's."""
    for file in ("generation_config.json", "config.json", "tokenizer_config.json"):
        if by_file.get(file):
            return by_file[file]
    return set()


@rule(
    "TOK031",
    "A special token is not in the vocabulary",
    severity="error",
    fix="Add the token to the tokenizer (added_tokens) or fix its spelling in tokenizer_config.json.",
    compares="bos/eos/pad/unk token strings vs vocab + added tokens",
)
def registered(md: ModelDir) -> Iterator[Finding]:
    tok = md.tokenizer
    if tok is None or (getattr(tok, "vocab", None) is None and tok.vocab_size is None):
        return
    for role, content in tok.special_tokens.items():
        if _id_of(tok, content) is None:
            yield finding(
                "TOK031",
                f"{role}_token {content!r} is neither in the vocabulary nor an added token",
                file="tokenizer_config.json",
            )


@rule(
    "TOK040",
    "No chat template",
    severity="info",
    fix="Base models have none; for a chat/instruct model copy chat_template.jinja (or "
    "tokenizer_config.json's chat_template) from the original.",
    compares="chat_template.jinja, tokenizer_config.json chat_template, chat_template.json",
)
@rule(
    "TOK041",
    "The chat template uses a token the tokenizer does not know",
    severity="warning",
    fix="Register the token as an added special token, or fix its spelling in the template; "
    "otherwise it is split into pieces and a stop token never stops.",
    compares="token literals in the chat template vs vocab + added tokens",
)
def template(md: ModelDir) -> Iterator[Finding]:
    tok = md.tokenizer
    if tok is None:
        return
    if not tok.chat_template:
        yield finding(
            "TOK040",
            "no chat template in chat_template.jinja, tokenizer_config.json or chat_template.json",
        )
        return
    if getattr(tok, "vocab", None) is None and tok.vocab_size is None:
        return  # no vocabulary to look literals up in
    source = getattr(tok, "chat_template_source", None)
    unknown = sorted(
        {
            lit
            for lit in re.findall(TEMPLATE_TOKEN_PATTERN, tok.chat_template)
            if _id_of(tok, lit) is None
        }
    )
    if unknown:
        yield finding(
            "TOK041",
            f"chat template uses {unknown[:5]}{' ...' if len(unknown) > 5 else ''} which the "
            "tokenizer does not know",
            file=source,
        )
