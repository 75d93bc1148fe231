"""Tokenizer files into one TokenizerInfo, without importing tokenizers or transformers.

Sources, in the order a loader trusts them: tokenizer.json (fast tokenizer: model vocab and added
tokens), tokenizer_config.json (added_tokens_decoder, special tokens, chat template,
model_max_length), special_tokens_map.json, chat_template.jinja / chat_template.json, and for
slow tokenizers vocab.json or a SentencePiece tokenizer.model (a protobuf whose pieces we count).
"""

from __future__ import annotations

from operator import itemgetter
from types import SimpleNamespace

from genai_common.formats import FormatError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SPECIAL_ROLES = ("bos", "eos", "pad", "unk", "sep", "cls", "mask")
_HUGE_MAX_LENGTH = 10**12  # transformers writes int(1e30) for "no limit"


class TokenizerInfo(SimpleNamespace):
    """What the tokenizer files say (a SimpleNamespace: == without the dataclasses import)."""

    vocab_size: int | None  # size of the base vocabulary (model vocab in tokenizer.json)
    added_tokens: dict[int, str]  # id -> content
    special_tokens: dict[str, str]  # role (bos/eos/pad/unk...) -> content
    chat_template: str | None
    token_to_id: dict[str, int]  # lookups for special/added tokens
    model_max_length: int | None
    source: str | None  # which file it was read from
    # added beyond the contract:
    special_added: set[int]  # added ids marked special
    extra_special: list[str]  # additional/extra special tokens
    chat_template_source: str | None  # file the chat template came from
    model_type: str | None  # tokenizer.json model.type: BPE, Unigram, WordPiece, ...
    vocab: dict[str, int] | None  # base vocab, token -> id (left out of repr)

    def __init__(
        self,
        vocab_size: int | None,
        added_tokens: dict[int, str] | None = None,
        special_tokens: dict[str, str] | None = None,
        chat_template: str | None = None,
        token_to_id: dict[str, int] | None = None,
        model_max_length: int | None = None,
        source: str | None = None,
        special_added: set[int] | None = None,
        extra_special: list[str] | None = None,
        chat_template_source: str | None = None,
        model_type: str | None = None,
        vocab: dict[str, int] | None = None,
    ) -> None:
        super().__init__(
            vocab_size=vocab_size,
            added_tokens={} if added_tokens is None else added_tokens,
            special_tokens={} if special_tokens is None else special_tokens,
            chat_template=chat_template,
            token_to_id={} if token_to_id is None else token_to_id,
            model_max_length=model_max_length,
            source=source,
            special_added=set() if special_added is None else special_added,
            extra_special=[] if extra_special is None else extra_special,
            chat_template_source=chat_template_source,
            model_type=model_type,
            vocab=vocab,
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "vocab")
        return f"TokenizerInfo({shown})"

    @property
    def size(self) -> int | None:
        """Ids the tokenizer can emit: max(base vocab, highest added id + 1)."""
        if self.vocab_size is None and not self.added_tokens:
            return None
        highest = max(self.added_tokens, default=-1) + 1
        return max(self.vocab_size or 0, highest)

    def id_of(self, token: str) -> int | None:
        """The id of a token, from the added tokens or the base vocabulary."""
        found = self.token_to_id.get(token)
        if found is None and self.vocab is not None:
            found = self.vocab.get(token)
        return found

    def token_of(self, token_id: int) -> str | None:
        """The token with this id (added tokens first, then the base vocabulary)."""
        if token_id in self.added_tokens:
            return self.added_tokens[token_id]
        for token, i in self.token_to_id.items():
            if i == token_id:
                return token
        if self.vocab is not None:
            reverse = getattr(self, "_reverse", None)
            if reverse is None:
                reverse = {i: t for t, i in self.vocab.items()}
                object.__setattr__(self, "_reverse", reverse)
            return reverse.get(token_id)
        return None


def _content(value: Any) -> str | None:
    """A special token is written as a string or as {"content": str, ...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def read_tokenizer(
    json_of: Callable[[str], dict | None],
    text_of: Callable[[str], str | None],
    bytes_of: Callable[[str], bytes | None],
    files: set[str],
) -> tuple[TokenizerInfo | None, list[Problem]]:
    """Assemble a TokenizerInfo from the files present. `json_of(rel)` is ModelDir's strict,
    cached JSON reader (None when absent or malformed); `text_of`/`bytes_of` read small files."""
    problems: list[Problem] = []
    names = (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json",
        "tokenizer.model",
        "chat_template.jinja",
        "chat_template.json",
    )
    if not any(n in files for n in names):
        return None, problems
    info = TokenizerInfo(vocab_size=None)
    fast = json_of("tokenizer.json") if "tokenizer.json" in files else None
    if fast is not None:
        info.source = "tokenizer.json"
        _read_fast(fast, info, problems)
    elif "vocab.json" in files:
        vocab = json_of("vocab.json")
        if vocab is not None:
            ids = [i for i in vocab.values() if _int(i) is not None]
            info.vocab = {t: i for t, i in vocab.items() if _int(i) is not None}
            info.vocab_size = max(ids) + 1 if ids else 0
            info.source = "vocab.json"
    if info.vocab_size is None and "tokenizer.model" in files:
        raw = bytes_of("tokenizer.model")
        if raw is not None:
            try:
                pieces = sentencepiece_pieces(raw)
            except FormatError as exc:
                problems.append((exc.code, f"tokenizer.model: {exc.message}"))
            else:
                info.vocab = {p: i for i, p in enumerate(pieces)}
                info.vocab_size = len(pieces)
                info.source = info.source or "tokenizer.model"
    cfg = json_of("tokenizer_config.json") if "tokenizer_config.json" in files else None
    if cfg is not None:
        info.source = info.source or "tokenizer_config.json"
        _read_config(cfg, info, problems)
    smap = json_of("special_tokens_map.json") if "special_tokens_map.json" in files else None
    if smap is not None:
        for role in SPECIAL_ROLES:
            content = _content(smap.get(f"{role}_token"))
            if content is not None:
                info.special_tokens.setdefault(role, content)
        seen = set(info.extra_special)  # a set: membership in a list was quadratic
        extra = smap.get("additional_special_tokens") or ()
        for tok in extra if isinstance(extra, list) else ():
            content = _content(tok)
            if content and content not in seen:
                seen.add(content)
                info.extra_special.append(content)
    _read_chat_template(json_of, text_of, files, info)
    for content in [*info.special_tokens.values(), *info.extra_special]:
        if content not in info.token_to_id:
            found = info.id_of(content)
            if found is not None:
                info.token_to_id[content] = found
    return info, problems


class VocabSummary:
    """What model.vocab of a tokenizer.json holds: its kind ("dict", "list" or None when missing
    or neither), the mapping token -> id the rules look up (a dict, or a LazyVocab that reads it
    on first use), the base vocabulary size, and how many dict ids are not integers."""

    __slots__ = ("bad", "kind", "mapping", "size")

    def __init__(
        self, kind: str | None, mapping: Any = None, size: int | None = None, bad: int = 0
    ) -> None:
        self.kind, self.mapping, self.size, self.bad = kind, mapping, size, bad


def summarize_vocab(vocab: Any, *, ints_only: bool = False) -> VocabSummary:
    """The summary of a model.vocab value as read from JSON. `ints_only`: the caller knows every
    value of a dict vocab is an int (a typed decoder checked it), so the dict is kept as it is."""
    if isinstance(vocab, dict):
        if ints_only or set(map(type, vocab.values())) <= {int}:  # C speed; bool is not int
            good = vocab
        else:
            good = {
                t: i for t, i in vocab.items() if _int(i) is not None and not isinstance(i, str)
            }
        size = max(good.values()) + 1 if good else 0
        return VocabSummary("dict", good, size, len(vocab) - len(good))
    if isinstance(vocab, list):  # Unigram: [[piece, score], ...] (tuples from a typed decoder)
        if set(map(type, vocab)) <= {list, tuple} and all(vocab):
            pieces = list(map(itemgetter(0), vocab))  # C speed, when every entry has a piece
            if set(map(type, pieces)) <= {str}:
                return VocabSummary(
                    "list", dict(zip(pieces, range(len(pieces)), strict=True)), len(vocab)
                )
        mapping = {
            entry[0]: i
            for i, entry in enumerate(vocab)
            if isinstance(entry, (list, tuple)) and entry and isinstance(entry[0], str)
        }
        return VocabSummary("list", mapping, len(vocab))
    return VocabSummary(None)


def _read_fast(data: dict, info: TokenizerInfo, problems: list[Problem]) -> None:
    model = data.get("model")
    if not isinstance(model, dict):
        problems.append(("TOK900", "tokenizer.json has no model object"))
        model = {}
    info.model_type = model.get("type") if isinstance(model.get("type"), str) else None
    # a large tokenizer.json comes summarized (formats/tokenizer_json.py): model.vocab left out
    summary = getattr(data, "vocab_summary", None) or summarize_vocab(model.get("vocab"))
    if summary.kind == "dict":
        if summary.bad:
            problems.append(("TOK900", f"tokenizer.json: {summary.bad} vocab ids are not integers"))
        info.vocab, info.vocab_size = summary.mapping, summary.size
    elif summary.kind == "list":
        info.vocab, info.vocab_size = summary.mapping, summary.size
    elif model:
        problems.append(("TOK900", "tokenizer.json: model.vocab is missing or not a map/list"))
    added = data.get("added_tokens")
    if isinstance(added, list):
        for tok in added:
            if not isinstance(tok, dict):
                continue
            tid, content = _int(tok.get("id")), tok.get("content")
            if tid is None or not isinstance(content, str):
                problems.append(
                    (
                        "TOK900",
                        f"tokenizer.json: added token {str(tok)[:60]} lacks an integer id or content",
                    )
                )
                continue
            info.added_tokens[tid] = content
            info.token_to_id[content] = tid
            if tok.get("special"):
                info.special_added.add(tid)
    elif added is not None:
        problems.append(("TOK900", "tokenizer.json: added_tokens is not a list"))


def _read_config(cfg: dict, info: TokenizerInfo, problems: list[Problem]) -> None:
    decoder = cfg.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        for key, tok in decoder.items():
            tid, content = _int(key), _content(tok)
            if tid is None or content is None:
                problems.append(
                    (
                        "TOK900",
                        f"tokenizer_config.json: added_tokens_decoder entry {key!r} is malformed",
                    )
                )
                continue
            info.added_tokens.setdefault(tid, content)
            info.token_to_id.setdefault(content, tid)
            if isinstance(tok, dict) and tok.get("special"):
                info.special_added.add(tid)
    for role in SPECIAL_ROLES:
        content = _content(cfg.get(f"{role}_token"))
        if content is not None:
            info.special_tokens[role] = content
    extra = cfg.get("additional_special_tokens") or cfg.get("extra_special_tokens") or ()
    if isinstance(extra, dict):  # transformers v5: {"image_token": "<image>", ...}
        extra = list(extra.values())
    if isinstance(extra, list):
        seen = set(info.extra_special)  # a set: membership in a list was quadratic
        for tok in extra:
            content = _content(tok)
            if content and content not in seen:
                seen.add(content)
                info.extra_special.append(content)
    max_len = cfg.get("model_max_length")
    if (
        isinstance(max_len, (int, float))
        and not isinstance(max_len, bool)
        and 0 < max_len < _HUGE_MAX_LENGTH
    ):
        info.model_max_length = int(max_len)
    template = cfg.get("chat_template")
    if template is not None:
        text = _template_text(template)
        if text is None:
            problems.append(
                (
                    "TOK900",
                    "tokenizer_config.json: chat_template is neither a string nor a list of {name, template}",
                )
            )
        else:
            info.chat_template, info.chat_template_source = text, "tokenizer_config.json"


def _template_text(template: Any) -> str | None:
    if isinstance(template, str):
        return template
    if isinstance(template, list):  # [{"name": "default", "template": "..."}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        chosen = named.get("default") or next(iter(named.values()), None)
        return chosen if isinstance(chosen, str) else None
    return None


def _read_chat_template(json_of, text_of, files: set[str], info: TokenizerInfo) -> None:
    """chat_template.jinja wins over tokenizer_config's, which wins over chat_template.json."""
    if "chat_template.jinja" in files:
        text = text_of("chat_template.jinja")
        if text:
            info.chat_template, info.chat_template_source = text, "chat_template.jinja"
            return
    if info.chat_template is None and "chat_template.json" in files:
        data = json_of("chat_template.json")
        text = _template_text(data.get("chat_template")) if data else None
        if text:
            info.chat_template, info.chat_template_source = text, "chat_template.json"


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise FormatError("TOK901", "truncated or malformed protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


# Pieces read from a tokenizer.model before the reader stops (TOK043): each is walked in Python
# (~5 us here), and real SentencePiece models hold at most 262,144 (Gemma 3); 5,000,000 pieces
# in a 60 MB file took 25 s and 413 MB (issue 15).
MAX_PIECES = 1 << 19


def sentencepiece_pieces(buf: bytes) -> list[str]:
    """The pieces of a SentencePiece ModelProto (field 1, each a message whose field 1 is the
    piece string). Bounded by len(buf): every length is checked before slicing; more than
    MAX_PIECES pieces: FormatError TOK043."""
    pieces: list[str] = []
    pos, end = 0, len(buf)
    while pos < end:
        if len(pieces) >= MAX_PIECES:
            raise FormatError(
                "TOK043",
                f"holds more than {MAX_PIECES:,} pieces (real SentencePiece models hold at most "
                "262,144): the rest was not read, so its size and pieces were not checked",
            )
        key, pos = _varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise FormatError("TOK901", "a protobuf field runs past the end of the file")
            if field_no == 1:
                pieces.append(_piece(buf, pos, pos + length))
            pos += length
        else:
            raise FormatError(
                "TOK901", f"unsupported protobuf wire type {wire}: not a SentencePiece model"
            )
        if pos > end:
            raise FormatError("TOK901", "a protobuf field runs past the end of the file")
    if not pieces:
        raise FormatError("TOK901", "no pieces found: not a SentencePiece model")
    return pieces


def _piece(buf: bytes, pos: int, end: int) -> str:
    while pos < end:
        key, pos = _varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise FormatError("TOK901", "a piece runs past its message")
            if field_no == 1:
                return buf[pos : pos + length].decode("utf-8", "replace")
            pos += length
        elif wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise FormatError("TOK901", f"unsupported protobuf wire type {wire} in a piece")
    return ""
