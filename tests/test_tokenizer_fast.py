"""The fast and cached tokenizer.json reader (formats/tokenizer_json.py) against the strict one.

Whatever path a tokenizer.json takes (strict json.loads, msgspec with the colon proof, a cache
entry), the rules must see the same TokenizerInfo and the same findings. The fast path applies to
files over LARGE bytes; the `fast` fixture lowers LARGE to 0 so that small real-layout files (made
by the `tokenizers` library, or by benchmarks/tokenizer_files.py in the published layouts) and
hostile variants of them take it, with a private cache folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import tokenizer_files
from genai_common.doctor import diagnose
from genai_common.formats import FormatError, readcache, tokenizer_json
from genai_common.formats.jsonfile import read_json
from genai_common.formats.tokenizer_json import (
    LazyVocab,
    TokenizerJSON,
    read_tokenizer_json,
    summarized,
)
from genai_common.model import ModelDir

CAP = 256 * 1024 * 1024


@pytest.fixture
def cache(tmp_path_factory, monkeypatch) -> Path:
    """A private cache folder; files count as settled at once (no racy window)."""
    folder = tmp_path_factory.mktemp("read-cache")
    monkeypatch.setenv("GENAI_CACHE_DIR", str(folder))
    monkeypatch.setattr(readcache, "RACY_NS", 0)
    return folder


@pytest.fixture
def fast(cache, monkeypatch) -> Path:
    """Every tokenizer.json takes the fast/cached reader."""
    monkeypatch.setattr(tokenizer_json, "LARGE", 0)
    return cache


def _strict(path: Path) -> tuple[Any, ...]:
    try:
        value, problems = read_json(path, max_bytes=CAP)
    except FormatError as exc:
        return ("error", exc.code, exc.message)
    return ("ok", summarized(value), problems)


def _fast(path: Path) -> tuple[Any, ...]:
    try:
        value, problems = read_tokenizer_json(path, max_bytes=CAP)
    except FormatError as exc:
        return ("error", exc.code, exc.message)
    return ("ok", value, problems)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert a[0] == b[0], (a[:1], b[:1], a[1:] if a[0] == "error" else b[1:])
    if a[0] == "error":
        assert a == b
        return
    assert type(a[1]) is type(b[1])
    assert json.dumps(a[1], sort_keys=True) == json.dumps(b[1], sort_keys=True)  # NaN == NaN
    assert a[2] == b[2]
    if isinstance(a[1], TokenizerJSON):
        sa, sb = a[1].vocab_summary, b[1].vocab_summary
        assert (sa.kind, sa.size, sa.bad) == (sb.kind, sb.size, sb.bad)
        assert sa.mapping == sb.mapping


# --- real layouts --------------------------------------------------------------------------------


def _corpus_lines() -> list[str]:
    from genai_common.testing.corpus import CORPUS

    return CORPUS.splitlines()


def _save(tok: Any, dest: Path, config: dict[str, Any]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "tokenizer.json").write_text(tok.to_str(pretty=True), encoding="utf-8")
    (dest / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return dest


def byte_level_bpe(dest: Path) -> Path:
    from genai_common.testing.bpe import LLAMA_SPEC, train_bpe

    tok = train_bpe(LLAMA_SPEC)
    cfg = {"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{{ '<|user|>' }}"}
    return _save(tok, dest, cfg)


def sentencepiece_bpe(dest: Path) -> Path:
    from tokenizers import SentencePieceBPETokenizer

    tok = SentencePieceBPETokenizer(unk_token="<unk>")
    tok.train_from_iterator(
        _corpus_lines(), vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"]
    )
    return _save(tok, dest, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})


def wordpiece(dest: Path) -> Path:
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer()
    tok.train_from_iterator(_corpus_lines(), vocab_size=300)
    cfg = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]"}
    return _save(tok, dest, cfg)


def unigram(dest: Path) -> Path:
    from tokenizers import SentencePieceUnigramTokenizer

    tok = SentencePieceUnigramTokenizer()
    tok.train_from_iterator(
        _corpus_lines(),
        vocab_size=200,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
    )
    return _save(tok, dest, {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"})


def llama3(dest: Path, form: str = "strings") -> Path:
    tokenizer_files.llama3_tokenizer(dest, n_tokens=3000, n_merges=None, merges_form=form)
    return dest


def gemma3(dest: Path) -> Path:
    tokenizer_files.gemma3_tokenizer(dest, n_tokens=3000, n_merges=None)
    return dest


LAYOUTS = {
    "byte-level-bpe": byte_level_bpe,
    "sentencepiece-bpe": sentencepiece_bpe,
    "wordpiece": wordpiece,
    "unigram": unigram,
    "llama3-strings": llama3,
    "llama3-pairs": lambda d: llama3(d, "pairs"),
    "gemma3": gemma3,
}


def test_generated_layouts_are_what_tokenizers_writes(tmp_path: Path) -> None:
    """The benchmark's files load in the tokenizers library; written in the form tokenizers >= 0.20
    writes (merges as pairs), they come back byte for byte from `to_str(pretty=True)`."""
    from tokenizers import Tokenizer

    for name, build in (("llama3", lambda d: llama3(d, "pairs")), ("gemma3", gemma3)):
        path = build(tmp_path / name) / "tokenizer.json"
        tok = Tokenizer.from_file(str(path))
        assert tok.to_str(pretty=True) == path.read_text(encoding="utf-8"), name
    strings = llama3(tmp_path / "strings") / "tokenizer.json"
    merges = json.loads(strings.read_text(encoding="utf-8"))["model"]["merges"]
    assert all(isinstance(m, str) and m.count(" ") == 1 for m in merges)  # Meta's files
    assert Tokenizer.from_file(str(strings)).encode("hello").ids


def _info(path: Path) -> tuple[Any, list[tuple[str, str | None, str]]]:
    md = ModelDir.open(path, metadata_only=True)
    info = md.tokenizer
    _ = md.json("tokenizer.json")
    return info, [(f.code, f.file, f.message) for f in md.problems]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_fast_and_cached_tokenizer_info_equals_the_strict_one(
    tmp_path: Path, cache: Path, monkeypatch, layout: str
) -> None:
    folder = LAYOUTS[layout](tmp_path / layout)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 4000}))
    strict_info, strict_findings = _info(folder)
    assert strict_info.vocab_size and strict_info.vocab
    monkeypatch.setattr(tokenizer_json, "LARGE", 0)
    miss_info, miss_findings = _info(folder)
    assert list(cache.iterdir()), "the first fast read stores an entry"
    hit_info, hit_findings = _info(folder)
    assert isinstance(hit_info.vocab, LazyVocab)
    for info, findings in ((miss_info, miss_findings), (hit_info, hit_findings)):
        assert findings == strict_findings
        public = {k: v for k, v in vars(strict_info).items() if not k.startswith("_")}
        assert {k for k in vars(info) if not k.startswith("_")} == public.keys()
        for field, value in public.items():
            assert getattr(info, field) == value, field
        assert info.size == strict_info.size
        some = sorted(strict_info.vocab.items(), key=lambda kv: kv[1])[:: max(1, 97)]
        for token, tid in some:
            assert info.id_of(token) == strict_info.id_of(token) == tid
            assert info.token_of(tid) == strict_info.token_of(tid)


@pytest.mark.parametrize("layout", ["llama3-strings", "gemma3"])
def test_a_cache_hit_does_not_read_the_vocabulary(tmp_path: Path, fast: Path, layout: str) -> None:
    """Llama-3 and Gemma 3 write every special token and chat-template token as an added token:
    a cache hit answers every look-up the rules make without reading tokenizer.json again."""
    folder = LAYOUTS[layout](tmp_path / layout)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 300_000}))
    first = diagnose(folder, metadata_only=True)
    md = ModelDir.open(folder, metadata_only=True)
    from genai_common.doctor import diagnose_dir

    second = diagnose_dir(md)
    assert isinstance(md.tokenizer.vocab, LazyVocab) and not md.tokenizer.vocab.loaded
    assert [f.to_json() for f in first.findings] == [f.to_json() for f in second.findings]


# --- hostile variants: the same outcome by any path ---------------------------------------------


def _llama_text(tmp_path: Path) -> str:
    path = llama3(tmp_path / "base-llama3") / "tokenizer.json"
    return path.read_text(encoding="utf-8")


def _edit_model(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _hostile(text: str) -> dict[str, bytes]:
    """Damaged real-layout files: each is either refused by msgspec or fails the colon proof."""
    vocab_open = '"vocab": {\n'
    merges_open = '"merges": [\n'
    b = text.encode("utf-8")
    return {
        "duplicate-vocab-token": _edit_model(
            text, vocab_open, vocab_open + '      "e": 7,\n'
        ).encode(),
        "duplicate-top-key": _edit_model(
            text, '"version": "1.0",', '"version": "1.0",\n  "version": "2",'
        ).encode(),
        "duplicate-in-pre-tokenizer": _edit_model(
            text, '"behavior": "Isolated",', '"behavior": "Isolated",\n "behavior": "Removed",'
        ).encode(),
        "duplicate-model": (
            text.rstrip()[:-1] + ', "model": {"type": "WordLevel", "vocab": {}}}'
        ).encode(),
        "object-in-merges": _edit_model(
            text, merges_open, merges_open + '{"a": 1, "a": 2},\n'
        ).encode(),
        "duplicate-with-escaped-colon": _edit_model(
            text, vocab_open, vocab_open + '      "x\\u003ay": 5,\n      "e": 9,\n'
        ).encode(),
        "spaced-duplicate": _edit_model(text, vocab_open, vocab_open + '      "e" : 3,\n').encode(),
        "nan-in-normalizer": _edit_model(text, '"normalizer": null', '"normalizer": NaN').encode(),
        "infinity-dropout": _edit_model(text, '"dropout": null', '"dropout": -Infinity').encode(),
        "huge-number": _edit_model(text, '"dropout": null', '"dropout": 1e400').encode(),
        "big-int-id": _edit_model(
            text, vocab_open, vocab_open + '      "zz-big": 123456789012345678901234567890,\n'
        ).encode(),
        "float-id": _edit_model(text, vocab_open, vocab_open + '      "zz-float": 5.0,\n').encode(),
        "string-id": _edit_model(text, vocab_open, vocab_open + '      "zz-str": "5",\n').encode(),
        "bool-id": _edit_model(text, vocab_open, vocab_open + '      "zz-bool": true,\n').encode(),
        "vocab-string": _edit_model(
            text, '"ignore_merges": true,', '"ignore_merges": true, "vocab": "x", "vocab2": 1,'
        ).encode(),
        "model-array": (text.split('"model": {')[0] + '"model": [1, 2]}').encode(),
        "added-not-list": _edit_model(text, '"added_tokens": [', '"added_tokens": {"a": [')
        .replace('\n  ],\n  "normalizer"', '\n  ]},\n  "normalizer"', 1)
        .encode(),
        "added-without-id": _edit_model(text, '"id": 3000,', '"idx": 3000,').encode(),
        "unknown-top-field": _edit_model(
            text, '"version": "1.0",', '"version": "1.0", "extra": {"k": 1},'
        ).encode(),
        "unknown-model-field": _edit_model(
            text, '"type": "BPE",', '"type": "BPE", "shiny": [1],'
        ).encode(),
        "lone-surrogate": _edit_model(
            text, vocab_open, vocab_open + '      "\\ud800": 3001,\n'
        ).encode(),
        "colon-token": _edit_model(
            text, vocab_open, vocab_open + '      ":zq:": 3002,\n      "a:b:zq": 3003,\n'
        ).encode(),
        "bad-utf8-in-merges": b.replace(b'"merges": [\n', b'"merges": [\n      "\xff \xfe",\n', 1),
        "bad-utf8-in-vocab": b.replace(b'"vocab": {\n', b'"vocab": {\n      "\xc0\x80": 9,\n', 1),
        "byte-order-mark": b"\xef\xbb\xbf" + b,
        "trailing-comma": _edit_model(
            text, '"ignore_merges": true,', '"ignore_merges": true,,'
        ).encode(),
        "truncated": b[: len(b) // 2],
        "trailing-garbage": b + b"\n}",
        "top-level-array": b"[" + b + b"]",
        "merges-of-three": _edit_model(
            text, merges_open, merges_open + '      "a b c",\n      ["a", "b", "c"],\n'
        ).encode(),
        "no-model": (text.split(',\n  "model": {')[0] + "}").encode(),
        "duplicate-in-object-in-merges": _edit_model(
            text, merges_open, merges_open + '      "a b", {"k": 1, "k": 2},\n'
        ).encode(),
        "duplicate-in-first-merge-object": _edit_model(
            text, merges_open, merges_open + '      {"k": 1, "k": 2},\n'
        ).encode(),
    }


def test_hostile_tokenizer_json_reads_the_same_by_every_path(tmp_path: Path, fast: Path) -> None:
    base = _llama_text(tmp_path)
    for name, raw in _hostile(base).items():
        path = tmp_path / name / "tokenizer.json"
        path.parent.mkdir()
        path.write_bytes(raw)
        strict = _strict(path)
        _same(_fast(path), strict)  # miss: msgspec or the strict fallback
        _same(_fast(path), strict)  # second read: the cache entry when one was stored


def test_hostile_cases_that_msgspec_accepts_fall_back_on_the_proof(tmp_path: Path) -> None:
    """The duplicate-key cases decode under msgspec (last value wins, as in json); the colon count
    is what sends them to the strict reader, which reports JSON005."""
    base = _llama_text(tmp_path)
    hostile = _hostile(base)
    for name in (
        "duplicate-vocab-token",
        "duplicate-top-key",
        "duplicate-in-pre-tokenizer",
        "duplicate-model",
        "duplicate-with-escaped-colon",
        "spaced-duplicate",
        "duplicate-in-object-in-merges",  # merges stay raw bytes: objects in them are caught
        "duplicate-in-first-merge-object",
    ):
        raw = hostile[name]
        assert tokenizer_json.fast_decode(raw) is None, name
        path = tmp_path / f"{name}.json"
        path.write_bytes(raw)
        assert "JSON005" in [code for code, _ in read_json(path, max_bytes=CAP)[1]], name
    assert tokenizer_json.fast_decode(hostile["colon-token"]) is not None
    assert tokenizer_json.fast_decode(base.encode()) is not None


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 10**9), st.sampled_from(b'{}[]",:\\ 0aE\xff\x00')), max_size=4
    ),
    insert=st.none()
    | st.tuples(st.integers(0, 10**9), st.sampled_from(['"e": 1,', '"k":', ",", '"\\u003a"'])),
)
def test_random_damage_reads_the_same_by_every_path(tmp_path_factory, edits, insert) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    os.environ["GENAI_CACHE_DIR"] = str(folder / "cache")
    old_large, old_racy = tokenizer_json.LARGE, readcache.RACY_NS
    tokenizer_json.LARGE, readcache.RACY_NS = 0, 0
    try:
        small = tokenizer_files.llama3_tokenizer(folder / "t", n_tokens=400, n_merges=None)
        raw = bytearray(small.read_bytes())
        for pos, byte in edits:
            raw[pos % len(raw)] = byte
        if insert is not None:
            at = insert[0] % len(raw)
            raw[at:at] = insert[1].encode()
        small.write_bytes(bytes(raw))
        strict = _strict(small)
        _same(_fast(small), strict)
        _same(_fast(small), strict)
    finally:
        tokenizer_json.LARGE, readcache.RACY_NS = old_large, old_racy
        del os.environ["GENAI_CACHE_DIR"]


def test_the_malformed_corpus_gives_the_same_findings_on_the_fast_path(
    tmp_path: Path, monkeypatch
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from malformed_corpus import CASES

    monkeypatch.setenv("GENAI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(readcache, "RACY_NS", 0)
    for name, build, _ in CASES:
        target = build(tmp_path / "cases" / name)
        strict = [f.to_json() for f in diagnose(target).findings]
        with monkeypatch.context() as m:
            m.setattr(tokenizer_json, "LARGE", 0)
            miss = [f.to_json() for f in diagnose(target).findings]
            hit = [f.to_json() for f in diagnose(target).findings]
        assert miss == strict, name
        assert hit == strict, name


# --- the cache ------------------------------------------------------------------------------------


def _entry(cache: Path) -> Path:
    entries = [p for p in cache.iterdir() if p.suffix == ".json"]
    assert len(entries) == 1, entries
    return entries[0]


def test_cache_lives_where_the_environment_says(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GENAI_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert readcache.cache_dir() == str(tmp_path / "xdg" / "genai-common" / "read-cache")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert readcache.cache_dir() == str(
        tmp_path / "home" / ".cache" / "genai-common" / "read-cache"
    )
    monkeypatch.setenv("GENAI_CACHE_DIR", str(tmp_path / "mine"))
    assert readcache.cache_dir() == str(tmp_path / "mine")
    monkeypatch.setenv("GENAI_CACHE_DIR", "")
    assert readcache.cache_dir() is None


def test_no_cache_when_disabled(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tokenizer_json, "LARGE", 0)
    monkeypatch.setattr(readcache, "RACY_NS", 0)
    monkeypatch.setenv("GENAI_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = llama3(tmp_path / "m") / "tokenizer.json"
    _same(_fast(path), _strict(path))
    assert not (tmp_path / "xdg").exists()


def test_entry_is_written_atomically_and_read_back(tmp_path: Path, fast: Path) -> None:
    path = llama3(tmp_path / "m") / "tokenizer.json"
    _fast(path)
    entry = _entry(fast)
    assert [p.name for p in fast.iterdir()] == [entry.name]  # no temporary file left behind
    data = json.loads(entry.read_text())
    st = os.stat(path)
    assert data["version"] == readcache.VERSION
    assert data["key"] == [st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                           st.st_ino, st.st_dev, "tokenizer.json"]  # fmt: skip
    assert "vocab" not in data["payload"]["object"]["model"]
    value, _ = read_tokenizer_json(path, max_bytes=CAP)
    assert isinstance(value.vocab_summary.mapping, LazyVocab)  # came from the entry


@pytest.mark.parametrize(
    "damage",
    [b"", b"{", b"\x00\xff garbage", b"[]", b'{"version": 1}', b'{"version": 999}', b"null"],
    ids=["empty", "truncated", "binary", "array", "no-key", "future-version", "null"],
)
def test_a_damaged_entry_is_ignored_and_replaced(tmp_path: Path, fast: Path, damage: bytes) -> None:
    path = llama3(tmp_path / "m") / "tokenizer.json"
    strict = _strict(path)
    _fast(path)
    entry = _entry(fast)
    entry.write_bytes(damage)
    _same(_fast(path), strict)
    assert json.loads(entry.read_text())["version"] == readcache.VERSION  # written anew


def test_an_entry_with_a_wrong_payload_is_ignored(tmp_path: Path, fast: Path) -> None:
    path = llama3(tmp_path / "m") / "tokenizer.json"
    strict = _strict(path)
    _fast(path)
    entry = _entry(fast)
    data = json.loads(entry.read_text())
    for payload in (None, [], {"object": {}}, {**data["payload"], "vocab": ["dict", "x", 0]}):
        entry.write_text(json.dumps({**data, "payload": payload}))
        _same(_fast(path), strict)


def _rewrite_same_size(path: Path, old: str, new: str) -> None:
    assert len(old.encode()) == len(new.encode())
    st = os.stat(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same size and mtime as before
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns


def test_an_edit_that_keeps_size_and_mtime_is_seen(tmp_path: Path, fast: Path) -> None:
    path = llama3(tmp_path / "m") / "tokenizer.json"
    before, _ = read_tokenizer_json(path, max_bytes=CAP)
    assert before["added_tokens"][1]["content"] == "<|end_of_text|>"
    time.sleep(0.01)  # ctime moves on
    _rewrite_same_size(path, "<|end_of_text|>", "<|end_of_TEXT|>")
    after, _ = read_tokenizer_json(path, max_bytes=CAP)
    assert after["added_tokens"][1]["content"] == "<|end_of_TEXT|>"
    _same(_fast(path), _strict(path))


def test_a_replaced_file_is_seen(tmp_path: Path, fast: Path) -> None:
    folder = llama3(tmp_path / "m")
    path = folder / "tokenizer.json"
    _fast(path)
    other = gemma3(tmp_path / "g") / "tokenizer.json"
    shutil.copyfile(other, folder / "new.json")
    os.replace(folder / "new.json", path)  # another inode under the same name
    value, _ = read_tokenizer_json(path, max_bytes=CAP)
    assert value["model"]["unk_token"] == "<unk>"
    _same(_fast(path), _strict(path))


def test_a_file_written_just_now_is_not_stored(tmp_path: Path, cache: Path, monkeypatch) -> None:
    monkeypatch.setattr(tokenizer_json, "LARGE", 0)
    monkeypatch.setattr(readcache, "RACY_NS", 60 * 10**9)
    path = llama3(tmp_path / "m") / "tokenizer.json"
    _same(_fast(path), _strict(path))
    assert list(cache.iterdir()) == []  # its timestamps could not tell a second write apart
    old = time.time_ns() - 120 * 10**9
    os.utime(path, ns=(old, old))
    _fast(path)
    assert len(list(cache.iterdir())) == 1


def test_the_cache_keeps_the_newest_entries(tmp_path: Path, fast: Path, monkeypatch) -> None:
    monkeypatch.setattr(readcache, "MAX_ENTRIES", 3)
    base = llama3(tmp_path / "m") / "tokenizer.json"
    for i in range(5):
        path = tmp_path / f"copy{i}" / "tokenizer.json"
        path.parent.mkdir()
        shutil.copyfile(base, path)
        _fast(path)
    assert len(list(fast.iterdir())) == 3


def test_an_unwritable_cache_only_costs_time(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GENAI_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(tokenizer_json, "LARGE", 0)
    monkeypatch.setattr(readcache, "RACY_NS", 0)
    path = llama3(tmp_path / "m") / "tokenizer.json"
    _same(_fast(path), _strict(path))


def test_without_msgspec_the_strict_reader_does_it(tmp_path: Path, fast: Path, monkeypatch) -> None:
    monkeypatch.setattr(tokenizer_json, "_DECODERS", {})
    monkeypatch.setitem(__import__("sys").modules, "msgspec", None)  # import fails
    path = llama3(tmp_path / "m") / "tokenizer.json"
    assert tokenizer_json.fast_decode(path.read_bytes()) is None
    _same(_fast(path), _strict(path))


# --- issue 14: one entry per file, whatever path reaches it --------------------------------------


def test_links_to_one_blob_share_one_entry_and_an_edit_invalidates_it(
    tmp_path: Path, fast: Path, monkeypatch
) -> None:
    """Hugging Face cache snapshots link tokenizer.json to one blob; a hard-linked copy of a
    folder holds the same file: each finds the entry the first read stored (no decode, no JSON
    parse), and a change through any link makes every one of them read the file again."""
    src = llama3(tmp_path / "src") / "tokenizer.json"
    repo = tmp_path / "hub" / "models--org--m"
    blob = repo / "blobs" / "0123abcd"
    blob.parent.mkdir(parents=True)
    shutil.move(src, blob)
    paths = []
    for rev in ("a" * 40, "b" * 40):
        snap = repo / "snapshots" / rev
        snap.mkdir(parents=True)
        (snap / "tokenizer.json").symlink_to(os.path.relpath(blob, snap))
        paths.append(snap / "tokenizer.json")
    hard = tmp_path / "copy"
    hard.mkdir()
    os.link(blob, hard / "tokenizer.json")
    paths.append(hard / "tokenizer.json")
    first = _fast(paths[0])
    assert len(list(fast.iterdir())) == 1

    def no_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read again: the entry was not shared")

    with monkeypatch.context() as m:
        m.setattr(tokenizer_json, "fast_decode", no_read)
        m.setattr(tokenizer_json, "parse_json_bytes", no_read)
        for path in paths[1:]:
            _same(_fast(path), first)
    assert len(list(fast.iterdir())) == 1
    text = blob.read_text(encoding="utf-8")
    blob.write_text(text.replace('"<|begin_of_text|>"', '"<|begin_of_text|>"', 1) + "\n")
    os.utime(blob, ns=(os.stat(blob).st_atime_ns, os.stat(blob).st_mtime_ns - 10**10))
    calls = []
    real = tokenizer_json.fast_decode
    monkeypatch.setattr(tokenizer_json, "fast_decode", lambda raw: calls.append(1) or real(raw))
    for path in paths:
        _same(_fast(path), first)
    assert len(calls) == 1  # read once after the edit (its new identity stored), then shared
