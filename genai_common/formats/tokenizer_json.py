"""tokenizer.json read for what the rules need: the same findings, a fraction of the time.

A tokenizer.json of a large vocabulary (Llama-3: 128,000 tokens and 280,147 merges, about 9 MB;
Gemma 3: 262,144 tokens, about 33 MB) costs `json.loads` hundreds of milliseconds and a dict of
the vocabulary besides, every run, while the rules read only model.type, the vocabulary (its size
and a few look-ups) and added_tokens. So a file over LARGE bytes is read in two ways:

  cached    an entry of formats/readcache.py under the file's identity holds what an earlier run
            made of it (every part but model.vocab and model.merges, the vocabulary's kind, size
            and count of non-integer ids, and the read problems); the vocabulary itself is read
            from the file again only if a rule looks up a token that is not an added token
            (LazyVocab). No JSON is parsed at all.
  fast      msgspec decodes the document against a schema of the fields tokenizers writes (model
            vocab as dict[str, int] or a Unigram list; merges kept as raw bytes, never decoded:
            merges_colons checks their UTF-8 and proves, by counting quotes on each colon's
            line, that every colon in them is inside a string); then one
            count proves that nothing was lost: every key is followed by exactly one `:`
            separator, and every other `:` is inside a string, so
                count(":") - colons inside the decoded strings >= keys written >= keys decoded,
            with equality only when no key was written twice (given no `\\u003a` escape, which
            would hide a colon). msgspec refuses NaN/Infinity, invalid UTF-8 in what it decodes,
            trailing commas and every other syntax error json refuses (tests/test_tokenizer_fast.py
            compares them on hostile inputs).
  strict    a miss up to STRICT_MISS x LARGE bytes (importing msgspec would cost more), and
            anything else (no msgspec, a byte-order mark, a field the schema does not name, a
            vocabulary id that is not an int, a duplicate key, NaN, a syntax error, ...) is read by
            jsonfile.parse_json_bytes exactly as before, so the findings are the same by
            construction.

What comes back is a TokenizerJSON: the file's object as read_json returns it, except that the
model object leaves out "vocab" and "merges"; `.vocab_summary` (formats.tokenizer.VocabSummary)
says what the vocabulary holds, and formats.tokenizer.read_tokenizer uses it. Files up to LARGE
bytes, and files whose "model" is not an object, come back from read_json unchanged.
"""

from __future__ import annotations

import os
import re
from operator import itemgetter

from genai_common.formats import readcache
from genai_common.formats.jsonfile import (
    MAX_JSON_BYTES,
    count_keys,
    parse_json_bytes,
    read_bytes,
    read_json,
    require_object,
)
from genai_common.formats.tokenizer import VocabSummary, summarize_vocab

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.formats import Problem

LARGE = 1 << 20  # below this json.loads costs a few ms: the strict reader, unchanged
# Up to STRICT_MISS x LARGE bytes a cache miss is read by the strict reader (and stored):
# importing msgspec costs more than it saves. Measured (RESULTS.md, issue 14 first run): a fresh
# process reading a byte-level BPE file, strict / msgspec with the proofs: 0.9 MB 21.7 / 27.7 ms,
# 1.85 MB (Mistral's size) 26.3 / 36.4 ms, 3.0 MB 45.5 / 44.6 ms. (A multiple of LARGE, so that
# tests lowering LARGE to 0 send every file through the fast decoder.)
STRICT_MISS = 3
# Over OUTLINE bytes (no published tokenizer.json comes near: Gemma 3's is 33 MB) a file is read in
# outline (outline_decode): model.vocab and model.merges are skipped by msgspec as raw JSON (their
# syntax checked, nothing built), so memory stays about the file's size (a 118 MB file of 3M
# tokens took 623 MB in full, 1.5 GB with the strict reader, issue 15); TOK042 says what was not
# checked. Below it, the full read costs ~3.5x the file for real vocabularies (Gemma 3: 111 MB
# for 32 MB) and ~8x for millions of short tokens (2.58M in 49 MB: 395 MB, 1.8 s); keys written
# twice are counted over COUNT_REPEATS, so the strict reader's ~17x applies to 16 MiB at most.
OUTLINE = 48 * 1024 * 1024
# Over COUNT_REPEATS bytes, keys written twice are counted by the fast decoder (the colon proof's
# surplus, exact once the schema refuses unknown fields) instead of named by the strict reader,
# whose object_pairs_hook costs ~17x the file (an 18 MB file repeating 1M vocabulary keys: 305 MB).
COUNT_REPEATS = 16 * 1024 * 1024
CACHE_KIND = "tokenizer.json"
LEFT_OUT = ("vocab", "merges")
TOP_FIELDS = (
    "version",
    "truncation",
    "padding",
    "added_tokens",
    "normalizer",
    "pre_tokenizer",
    "post_processor",
    "decoder",
    "model",
)
MODEL_FIELDS = (  # BPE, WordPiece, WordLevel and Unigram models, as tokenizers writes them
    "type",
    "dropout",
    "unk_token",
    "unk_id",
    "continuing_subword_prefix",
    "end_of_word_suffix",
    "max_input_chars_per_word",
    "fuse_unk",
    "byte_fallback",
    "ignore_merges",
    "vocab",
    "merges",
)
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")
_NOT_QUOTE_OR_COLON = bytes(b for b in range(256) if b not in b'":')
LINE_SCAN = 512  # merges_colons: longer lines (a file not pretty-printed) take the global count
UTF8_CHUNK = 1 << 18  # validate UTF-8 in pieces that stay in the CPU cache: 2-3x faster than whole


class TokenizerJSON(dict):
    """A tokenizer.json object without model.vocab and model.merges; `vocab_summary` says what
    the vocabulary holds; `repeated`, how many keys the fast decoder counted as written twice."""

    vocab_summary: VocabSummary
    repeated: int = 0


class LazyVocab:
    """token -> id of a tokenizer.json's vocabulary, read from the file on first use (a cache
    hit knows the vocabulary's size without it). A read-only mapping: get, [], in, len, iter,
    items, keys, values, ==."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self._path, self._max_bytes = path, max_bytes
        self._mapping: dict[str, int] | None = None

    @property
    def loaded(self) -> bool:
        return self._mapping is not None

    def _load(self) -> dict[str, int]:
        if self._mapping is None:
            self._mapping = _read_vocab(self._path, self._max_bytes)
        return self._mapping

    def get(self, key: str, default: Any = None) -> Any:
        return self._load().get(key, default)

    def __getitem__(self, key: str) -> int:
        return self._load()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._load()

    def __len__(self) -> int:
        return len(self._load())

    def __iter__(self) -> Any:
        return iter(self._load())

    def items(self) -> Any:
        return self._load().items()

    def keys(self) -> Any:
        return self._load().keys()

    def values(self) -> Any:
        return self._load().values()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyVocab):
            other = other._load()
        return self._load() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        state = f"{len(self._mapping)} tokens" if self._mapping is not None else "not read"
        return f"LazyVocab({self._path!r}, {state})"


def read_tokenizer_json(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES, what: str | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """read_json's contract for tokenizer.json: (object, problems), or FormatError with the same
    code and message. Over LARGE bytes the object is a TokenizerJSON (see the module)."""
    path = os.fspath(path)
    what = what or os.path.basename(path)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is None or st.st_size <= LARGE or st.st_size > max_bytes:
        return read_json(path, max_bytes=max_bytes, what=what)
    key = readcache.identity(path, st, what)
    cached = _from_payload(readcache.load(CACHE_KIND, key, st), path, max_bytes)
    if cached is not None:
        return cached
    raw, st = read_bytes(path, max_bytes=max_bytes, what=what)
    problems: list[Problem] = []
    if len(raw) > OUTLINE and _decoders() is not None:
        data = outline_decode(raw, what)
        problems.append(
            (
                "TOK042",
                f"{what} is {len(raw):,} bytes, over the {OUTLINE:,} read in full (the largest "
                "published tokenizer.json is 33 MB): model.vocab and model.merges were checked "
                "for JSON syntax and UTF-8 only; their size, ids and duplicate keys, and duplicate "
                "keys anywhere in the file, were not checked",
            )
        )
        readcache.store(
            CACHE_KIND, readcache.identity(path, st, what), st, _payload(data, problems)
        )
        return data, problems
    data: dict[str, Any] | None = None if len(raw) <= STRICT_MISS * LARGE else fast_decode(raw)
    if isinstance(data, TokenizerJSON) and data.repeated:
        problems.append(
            (
                "JSON005",
                f"{what} repeats {data.repeated:,} key(s) (counted, not named: the file is over "
                f"{COUNT_REPEATS:,} bytes); Python keeps the last value, other readers may keep "
                "the first or refuse",
            )
        )
    if data is None:
        value, problems = parse_json_bytes(raw, what=what, max_bytes=max_bytes)
        data = summarized(require_object(value, what))
    if isinstance(data, TokenizerJSON):
        readcache.store(
            CACHE_KIND, readcache.identity(path, st, what), st, _payload(data, problems)
        )
    return data, problems


def summarized(value: dict[str, Any]) -> dict[str, Any]:
    """A strictly read tokenizer.json object as a TokenizerJSON (value itself when its model is
    not an object: then there is no vocabulary to summarize)."""
    model = value.get("model")
    if not isinstance(model, dict):
        return value
    data = TokenizerJSON(value)
    data["model"] = {k: v for k, v in model.items() if k not in LEFT_OUT}
    data.vocab_summary = summarize_vocab(model.get("vocab"))
    return data


# ---------------------------------------------------------------------------- the fast decoder
_DECODERS: dict[str, Any] = {}


def _decoders() -> dict[str, Any] | None:
    """msgspec decoders for the whole document and for the vocabulary alone, built once; None
    when msgspec is not installed (then the strict reader does everything)."""
    if not _DECODERS:
        try:
            import msgspec
        except ImportError:
            return None
        from typing import Any as AnyType

        unset, defstruct = msgspec.UNSET, msgspec.defstruct
        # merges are kept as raw bytes: no rule reads them, and decoding 280k strings is most of
        # the work; their colons are counted in the bytes (below)
        # a Unigram vocabulary as (piece, score) pairs: typed, so that no object can hide in it
        # and its pieces come out at C speed (an untyped list cost 0.5 s for 250k pieces)
        kinds = {"vocab": dict[str, int] | list[tuple[str, float]], "merges": msgspec.Raw}
        # a field the schema does not name is refused (the strict reader reads that file): then
        # every colon the proof cannot account for is a key written twice
        model = defstruct(
            "TokenizerModel",
            [(n, kinds.get(n, AnyType), unset) for n in MODEL_FIELDS],
            forbid_unknown_fields=True,
        )
        top = defstruct(
            "TokenizerFile",
            [(n, model if n == "model" else AnyType, unset) for n in TOP_FIELDS],
            forbid_unknown_fields=True,
        )
        vocab_model = defstruct("VocabModel", [("vocab", kinds["vocab"], unset)])
        vocab_top = defstruct("VocabFile", [("model", vocab_model, unset)])
        # the outline of a file over OUTLINE bytes: vocab and merges skipped as raw JSON
        raw, skipped = msgspec.Raw, ("vocab", "merges")
        outline_model = defstruct(
            "OutlineModel",
            [(n, raw if n in skipped else AnyType, unset) for n in MODEL_FIELDS],
        )
        outline = defstruct(
            "OutlineFile",
            [(n, raw if n == "model" else AnyType, unset) for n in TOP_FIELDS],
        )
        _DECODERS.update(
            msgspec=msgspec,
            file=msgspec.json.Decoder(top),
            vocab=msgspec.json.Decoder(vocab_top),
            outline=msgspec.json.Decoder(outline),
            outline_model=msgspec.json.Decoder(outline_model),
            any=msgspec.json.Decoder(),
        )
    return _DECODERS


def fast_decode(raw: bytes) -> TokenizerJSON | None:
    """The TokenizerJSON of raw when msgspec reads it against the schema and the colon count
    proves no key was lost; None: read it strictly."""
    decoders = _decoders()
    if decoders is None or raw.startswith(b"\xef\xbb\xbf"):
        return None
    unset = decoders["msgspec"].UNSET
    try:
        doc = decoders["file"].decode(raw)
    except Exception:  # DecodeError, ValidationError, nesting limits: the strict reader says why
        return None
    model = doc.model
    if model is unset:
        return None
    data = TokenizerJSON()
    keys = colons = 0
    for name in TOP_FIELDS:
        value = getattr(doc, name)
        if value is unset:
            continue
        keys += 1
        if name != "model":
            data[name] = value
            keys += count_keys(value)
            colons += _colons(value)
            continue
        fields: dict[str, Any] = {}
        for field in MODEL_FIELDS:
            item = getattr(model, field)
            if item is unset:
                continue
            keys += 1
            if field not in LEFT_OUT:
                fields[field] = item
                keys += count_keys(item)
                colons += _colons(item)
        data["model"] = fields
    vocab, merges = model.vocab, model.merges
    if isinstance(vocab, dict):
        keys += len(vocab)
        colons += "".join(vocab).count(":")
        summary = summarize_vocab(vocab, ints_only=True)
    elif isinstance(vocab, list):  # (piece, score) tuples: no keys, colons only in the pieces
        pieces = list(map(itemgetter(0), vocab))
        colons += "".join(pieces).count(":")
        summary = VocabSummary(
            "list", dict(zip(pieces, range(len(pieces)), strict=True)), len(pieces)
        )
    else:
        summary = VocabSummary(None)
    if merges is not unset:
        inside = merges_colons(bytes(merges))
        if inside is None:
            return None  # not UTF-8, or a colon outside a string (an object in merges)
        colons += inside
    if b"\\u003" in raw and _ESCAPED_COLON.search(raw):
        return None  # an escaped colon hides from the count: read strictly
    repeated = raw.count(b":") - colons - keys
    if repeated and (repeated < 0 or len(raw) <= COUNT_REPEATS):
        return None  # keys written twice: the strict reader names them
    data.vocab_summary = summary
    data.repeated = repeated
    return data


def outline_decode(raw: bytes, what: str) -> TokenizerJSON:
    """A tokenizer.json over OUTLINE bytes, read without its vocabulary and merges: msgspec skips
    them as raw JSON (syntax checked, nothing built); the whole file is checked to be UTF-8 in
    pieces. The vocabulary's kind is kept, its mapping and size are unknown (None): the rules that
    need them do not run. FormatError JSON001/JSON002 when the file is not UTF-8 or not JSON
    (NaN and Infinity included: msgspec refuses them)."""
    from genai_common.formats import FormatError

    decoders = _decoders()
    assert decoders is not None  # the caller checked
    if not is_utf8(raw):
        raise FormatError("JSON001", f"{what} is not UTF-8")
    msgspec = decoders["msgspec"]
    body = memoryview(raw)[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        doc = decoders["outline"].decode(body)
    except msgspec.ValidationError as exc:  # the document is not an object
        raise FormatError("JSON003", f"{what} is not a JSON object ({exc})") from None
    except Exception as exc:  # DecodeError (syntax, NaN), nesting limits
        raise FormatError("JSON002", f"{what} is not valid JSON: {str(exc)[:200]}") from None
    data = TokenizerJSON()
    unset = msgspec.UNSET
    for name in TOP_FIELDS:
        value = getattr(doc, name)
        if value is not unset and name != "model":
            data[name] = value
    kind = None
    model = doc.model
    if model is not unset:
        try:
            fields = decoders["outline_model"].decode(model)
        except Exception:  # not an object: the rules say so (TOK900), as for a small file
            data["model"] = decoders["any"].decode(model) if len(model) < LARGE else None
        else:
            data["model"] = {
                n: getattr(fields, n)
                for n in MODEL_FIELDS
                if n not in LEFT_OUT and getattr(fields, n) is not unset
            }
            vocab = fields.vocab
            if vocab is not unset:
                first = bytes(memoryview(vocab)[:1])
                kind = {b"{": "dict", b"[": "list"}.get(first)
    data.vocab_summary = VocabSummary(kind)
    return data


def is_utf8(data: bytes) -> bool:
    """Whether data is valid UTF-8 (as bytes.decode("utf-8") says), decoded in cache-sized pieces
    by an incremental decoder (a character split between pieces is carried over); nothing kept."""
    if data.isascii():
        return True
    import codecs

    decode = codecs.getincrementaldecoder("utf-8")().decode
    view = memoryview(data)
    try:
        for start in range(0, len(data), UTF8_CHUNK):
            decode(view[start : start + UTF8_CHUNK])
        decode(b"", True)
    except UnicodeDecodeError:
        return False
    return True


def merges_colons(merged: bytes) -> int | None:
    """The colons inside the strings of model.merges, given as the raw bytes of a value msgspec
    has already checked to be valid JSON (syntax, escapes, no control characters) but not UTF-8.
    None when the bytes are not UTF-8 or some colon lies outside every string: a key of an object
    inside merges, whose duplicates the colon proof could then not see.

    Without decoding a string: a colon is inside one exactly when an odd number of unescaped
    quotes precede it, counted from any point outside every string, such as the start of the
    colon's line. Merges hold a few thousand colons (8,880 in the Llama-3 layout, 16,094 in
    Gemma 3's), each on a short line: a few C-level calls each (escaped backslashes, then escaped
    quotes taken out of the line first). A long line sends the whole value to
    _colons_outside_strings."""
    if not is_utf8(merged):
        return None
    colons = merged.count(b":")
    if not colons:
        return 0  # no key anywhere: an object in merges (if any) has no key to repeat
    find, rfind = merged.find, merged.rfind
    at = find(b":")
    while at != -1:
        # a line starts outside every string (a string holds no raw newline), so the quotes
        # between the line's start and the colon tell; tokenizers writes one merge a line
        line = merged[rfind(b"\n", 0, at) + 1 : at]
        if len(line) > LINE_SCAN:
            return _colons_outside_strings(merged)
        if b"\\" in line:  # escapes, read left to right from outside a string as JSON does
            line = line.replace(b"\\\\", b"").replace(b'\\"', b"")
        if not line.count(b'"') & 1:
            return None  # outside every string: a key
        at = find(b":", at + 1)
    return colons


def _colons_outside_strings(merged: bytes) -> int | None:
    """merges_colons for a value written on long lines (not pretty-printed): the
    escaped backslashes, then the escaped quotes are taken out (left to right, as JSON reads
    escapes), so that every quote left opens or closes a string; only quotes and colons are kept,
    and the pieces between quotes at even places (outside the strings) must hold no colon."""
    colons = merged.count(b":")
    if b"\\" in merged:
        merged = merged.replace(b"\\\\", b"").replace(b'\\"', b"")
    pieces = merged.translate(None, _NOT_QUOTE_OR_COLON).split(b'"')
    if len(pieces) % 2 == 0 or any(pieces[0::2]):
        return None
    return colons


def _colons(value: Any) -> int:
    """Colons in every string of a decoded JSON value, keys included (iterative)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            total += item.count(":")
        elif type(item) is dict:
            total += "".join(item).count(":")
            stack.extend(item.values())
        elif type(item) is list or type(item) is tuple:
            stack.extend(item)
    return total


def _read_vocab(path: str, max_bytes: int) -> dict[str, int]:
    """The vocabulary mapping of a tokenizer.json, read again (a cache hit's first look-up)."""
    try:
        raw, _ = read_bytes(path, max_bytes=max_bytes, what=os.path.basename(path))
    except Exception:
        return {}
    decoders = _decoders()
    if decoders is not None and not raw.startswith(b"\xef\xbb\xbf"):
        try:
            doc = decoders["vocab"].decode(raw)
        except Exception:
            doc = None
        if doc is not None and doc.model is not decoders["msgspec"].UNSET:
            vocab = doc.model.vocab
            if isinstance(vocab, (dict, list)):
                return summarize_vocab(vocab, ints_only=True).mapping
    try:
        value, _ = parse_json_bytes(raw, max_bytes=max_bytes)
    except Exception:
        return {}
    model = value.get("model") if isinstance(value, dict) else None
    mapping = summarize_vocab(model.get("vocab") if isinstance(model, dict) else None).mapping
    return mapping if mapping is not None else {}


# ---------------------------------------------------------------------------- cache entries
def _payload(data: TokenizerJSON, problems: list[Problem]) -> dict[str, Any]:
    summary = data.vocab_summary
    return {
        "object": dict(data),
        "vocab": [summary.kind, summary.size, summary.bad],
        "problems": [list(p) for p in problems],
        "outline": summary.mapping is None,  # read in outline: no vocabulary to look up later
    }


def _from_payload(
    payload: Any, path: str, max_bytes: int
) -> tuple[TokenizerJSON, list[Problem]] | None:
    """A cache entry's TokenizerJSON and problems; None when the entry has the wrong shape."""
    if not isinstance(payload, dict):
        return None
    obj, vocab, problems = payload.get("object"), payload.get("vocab"), payload.get("problems")
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("model"), dict)
        or not isinstance(vocab, list)
        or len(vocab) != 3
        or vocab[0] not in ("dict", "list", None)
        or not (vocab[1] is None or type(vocab[1]) is int)
        or type(vocab[2]) is not int
        or not isinstance(problems, list)
        or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
            for p in problems
        )
    ):
        return None
    kind, size, bad = vocab
    data = TokenizerJSON(obj)
    outline = payload.get("outline") is True
    mapping = LazyVocab(path, max_bytes) if kind is not None and not outline else None
    data.vocab_summary = VocabSummary(kind, mapping, size, bad)
    return data, [(code, message) for code, message in problems]
