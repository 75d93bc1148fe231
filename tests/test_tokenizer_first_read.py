"""The first read of a large tokenizer.json (issue 14, the first run): the fast decoder must be
TAKEN on the layouts real checkpoints ship (a silent fall back to the strict reader costs 2-3x),
and what it proves about model.merges without decoding them (formats/tokenizer_json.py,
merges_colons) must agree with a full decode on every input, hostile ones included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import tokenizer_files
from genai_common.formats import tokenizer_json
from genai_common.formats.jsonfile import read_json
from genai_common.formats.tokenizer_json import merges_colons, summarized


def _reference(merged: bytes) -> int | None:
    """What merges_colons must say, from a full decode: None when not UTF-8 or when an object
    inside holds a key; else the colons of the bytes (all inside strings)."""
    try:
        value = json.loads(merged.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item:
                return None
        elif isinstance(item, list):
            stack.extend(item)
    return merged.count(b":")


TRICKY = [
    "a :",
    ": b",
    ":",
    '" :',
    '\\" :',
    "\\\\ :",
    '\\\\" :',
    "{ :",
    ",{ :",
    "n ,{",
    '": x',
    "a\\u003a b",
    "\\n :",
    "Ġ {",
    "}: ]",
]


def _layouts() -> list[bytes]:
    out = []
    for merges in (TRICKY, [m.split(" ", 1) for m in TRICKY]):
        for indent in (6, None):
            out.append(json.dumps(merges, indent=indent, ensure_ascii=False).encode())
    return out


def test_merges_colons_agrees_with_a_full_decode_on_tricky_merges() -> None:
    for merged in _layouts():
        assert merges_colons(merged) == _reference(merged) == merged.count(b":"), merged
    objects = [
        b'[\n  "a b",\n  {"k": 1, "k": 2}\n]',
        b'["a b", {"k": 1}]',
        b'[\n  "a :",\n  {\n    "k": 1\n  }\n]',
        b'[\n  ["a", "b"],\n  [{"k": ":"}, "b"]\n]',
        b'[\n  "\\\\", {"k": 1}\n]',
        b'[\n  "\\"", {"k": 1}\n]',
        b'[["\\\\\\"", {"k": 1}]]',
    ]
    for merged in objects:
        assert _reference(merged) is None
        assert merges_colons(merged) is None, merged
    assert merges_colons(b'["a \xff b"]') is None  # not UTF-8
    assert merges_colons(b'["a : b", {}]') == 1  # an empty object has no key to repeat


_PIECE = st.sampled_from(['"', "\\", ":", "{", "}", ",", "[", "a", " ", "é", "\n"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    merges=st.lists(
        st.one_of(
            st.text(_PIECE, max_size=6),
            st.tuples(st.text(_PIECE, max_size=4), st.text(_PIECE, max_size=4)).map(list),
            st.dictionaries(st.text(_PIECE, max_size=3), st.integers(0, 3), max_size=2),
        ),
        max_size=6,
    ),
    indent=st.sampled_from([None, 2, 6]),
)
def test_merges_colons_agrees_with_a_full_decode_on_random_merges(merges, indent) -> None:
    merged = json.dumps(merges, indent=indent, ensure_ascii=False).encode()
    assert merges_colons(merged) == _reference(merged)


def _read(raw: bytes, tmp_path: Path, name: str) -> tuple[Any, Any]:
    path = tmp_path / f"{name}.json"
    path.write_bytes(raw)
    value, problems = read_json(path, max_bytes=1 << 28)
    return summarized(value), problems


def test_the_fast_decoder_is_taken_on_real_layouts_and_agrees(tmp_path: Path) -> None:
    """Llama-3 (byte-level BPE, merges as strings and as pairs) and Gemma 3 (SentencePiece BPE,
    byte fallback): fast_decode gives the strict reader's object and vocabulary summary, and
    does not fall back (the old object-in-merges test refused every merge like "Ġ ,{")."""
    cases = {
        "llama3-strings": tokenizer_files.llama3_tokenizer(
            tmp_path / "l", n_tokens=6000, n_merges=None
        ),
        "llama3-pairs": tokenizer_files.llama3_tokenizer(
            tmp_path / "p", n_tokens=6000, n_merges=None, merges_form="pairs"
        ),
        "gemma3": tokenizer_files.gemma3_tokenizer(tmp_path / "g", n_tokens=6000, n_merges=None),
    }
    for name, path in cases.items():
        raw = path.read_bytes()
        text = raw.decode()
        # the shape that sent real Llama-3 files to the strict reader: merges holding "{", ":",
        # ",{" and escapes next to a colon
        extra = ["Ġ {", "Ġ ,{", "n ,{", ": :", '\\" :', "\\\\ :"]
        if name.endswith("pairs") or name == "gemma3":
            add = "".join(f"\n      {json.dumps(m.split(' '), ensure_ascii=False)}," for m in extra)
        else:
            add = "".join(f"\n      {json.dumps(m, ensure_ascii=False)}," for m in extra)
        text = text.replace('"merges": [', '"merges": [' + add, 1)
        raw = text.encode()
        fast = tokenizer_json.fast_decode(raw)
        assert fast is not None, name
        strict, problems = _read(raw, tmp_path, name)
        assert problems == []
        assert json.dumps(fast, sort_keys=True) == json.dumps(strict, sort_keys=True), name
        a, b = fast.vocab_summary, strict.vocab_summary
        assert (a.kind, a.size, a.bad, a.mapping) == (b.kind, b.size, b.bad, b.mapping), name


def test_the_fast_decoder_is_taken_on_every_layout_tokenizers_writes(tmp_path: Path) -> None:
    """Every layout of test_tokenizer_fast (made by the tokenizers library: byte-level BPE,
    SentencePiece BPE, WordPiece, Unigram; and the benchmark's Llama-3 / Gemma 3 files) takes the
    fast decoder, and it agrees with the strict reader; the malformed variants there (hostile,
    random damage, the malformed corpus) are compared by every path in that module."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_tokenizer_fast import LAYOUTS

    for name, build in sorted(LAYOUTS.items()):
        raw = (build(tmp_path / name) / "tokenizer.json").read_bytes()
        fast = tokenizer_json.fast_decode(raw)
        assert fast is not None, name
        strict, problems = _read(raw, tmp_path, name)
        assert problems == []
        assert json.dumps(fast, sort_keys=True) == json.dumps(strict, sort_keys=True), name
        a, b = fast.vocab_summary, strict.vocab_summary
        assert (a.kind, a.size, a.bad, a.mapping) == (b.kind, b.size, b.bad, b.mapping), name


def test_a_mid_sized_miss_is_read_strictly_and_still_cached(tmp_path: Path, monkeypatch) -> None:
    """Between LARGE and STRICT_MISS x LARGE bytes, a cache miss does not import msgspec (it
    costs more than json there) but still stores its entry; the hit reads the same."""
    from genai_common.formats import readcache
    from genai_common.formats.tokenizer_json import read_tokenizer_json

    monkeypatch.setenv("GENAI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(readcache, "RACY_NS", 0)
    path = tokenizer_files.llama3_tokenizer(tmp_path / "m", n_tokens=600, n_merges=None)
    size = path.stat().st_size
    monkeypatch.setattr(tokenizer_json, "LARGE", size // 2)

    def refuse(raw: bytes) -> None:
        raise AssertionError("fast_decode called on a mid-sized miss")

    monkeypatch.setattr(tokenizer_json, "fast_decode", refuse)
    miss, problems = read_tokenizer_json(path, max_bytes=1 << 28)
    assert problems == []
    assert len(list((tmp_path / "cache").iterdir())) == 1
    hit, _ = read_tokenizer_json(path, max_bytes=1 << 28)
    strict, _ = _read(path.read_bytes(), tmp_path, "strict")
    for value in (miss, hit):
        assert json.dumps(value, sort_keys=True) == json.dumps(strict, sort_keys=True)
        assert value.vocab_summary.size == strict.vocab_summary.size
    assert dict(hit.vocab_summary.mapping.items()) == strict.vocab_summary.mapping


def _unigram_doc(vocab: list[Any]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": 0, "content": "<pad>", "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "Unigram", "unk_id": 2, "vocab": vocab, "byte_fallback": False},
    }


def test_unigram_vocabularies_read_the_same_by_every_path(tmp_path: Path, monkeypatch) -> None:
    """A Unigram vocabulary ([piece, score] pairs, T5 / XLM-R) is decoded typed, as tuples; the
    strict reader's summary and every hostile variant's findings must come out the same."""
    from genai_common.formats import readcache
    from genai_common.formats.tokenizer_json import read_tokenizer_json

    monkeypatch.setenv("GENAI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(readcache, "RACY_NS", 0)
    monkeypatch.setattr(tokenizer_json, "LARGE", 0)
    base = [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["▁a:b", -2.5], ["é", -3]]
    variants = {
        "plain": base,
        "duplicate-piece": [*base, ["é", -4.0]],
        "three-items": [*base, ["x", -1.0, 7]],
        "one-item": [*base, ["x"]],
        "empty-entry": [*base, []],
        "number-piece": [*base, [5, -1.0]],
        "string-score": [*base, ["x", "-1"]],
        "object-entry": [*base, {"k": 1, "x": ":"}],
        "not-a-pair": [*base, "x"],
        "empty": [],
    }
    for name, vocab in variants.items():
        raw = json.dumps(_unigram_doc(vocab), indent=2, ensure_ascii=False).encode()
        if name == "plain":
            assert tokenizer_json.fast_decode(raw) is not None
        path = tmp_path / name / "tokenizer.json"
        path.parent.mkdir()
        path.write_bytes(raw)
        strict, strict_problems = _read(raw, tmp_path, name)
        for _ in range(2):  # the miss, then the cache entry
            value, problems = read_tokenizer_json(path, max_bytes=1 << 28)
            assert problems == strict_problems, name
            assert json.dumps(value, sort_keys=True) == json.dumps(strict, sort_keys=True), name
            a, b = value.vocab_summary, strict.vocab_summary
            assert (a.kind, a.size, a.bad) == (b.kind, b.size, b.bad), name
            assert dict(a.mapping.items()) == b.mapping, name
    dup = json.dumps(_unigram_doc([*base, {"k": 1}]), indent=2).replace('"k": 1', '"k": 1, "k": 2')
    assert tokenizer_json.fast_decode(dup.encode()) is None  # an object in the list: strict
    assert [c for c, _ in _read(dup.encode(), tmp_path, "dup")[1]] == ["JSON005"]
