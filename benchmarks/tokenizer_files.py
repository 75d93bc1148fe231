"""Tokenizer files in the shape and size of published checkpoints, for the doctor's benchmark.

No hub is reachable here, so the files are made, not downloaded; they follow the published
layouts field by field, in the order and formatting the `tokenizers` library writes
(`Tokenizer.to_str(pretty=True)`: serde's pretty printer, two-space indent, UTF-8 unescaped):

  llama3   Meta-Llama-3 / 3.1 / 3.2 / 3.3 (tiktoken converted by transformers): a byte-level BPE
           with 128,000 tokens (ids 0-127999), 280,147 merges, 256 added special tokens
           (128000-128255: <|begin_of_text|>, <|end_of_text|>, <|reserved_special_token_N|>,
           <|start_header_id|>, <|end_header_id|>, <|eot_id|>, ...), ignore_merges true, a
           Sequence pre-tokenizer (Split on the Llama-3 regex, then ByteLevel without regex), a
           Sequence post-processor (ByteLevel, then TemplateProcessing with <|begin_of_text|>) and
           a ByteLevel decoder. Meta's files (tokenizers 0.19) write merges as "a b" strings: about
           9 MB. Re-saved by tokenizers >= 0.20 they become ["a", "b"] pairs (merges_form="pairs").
  gemma3   Gemma 3 (SentencePiece converted to BPE): 262,144 tokens, byte fallback (<0x00>-<0xFF>),
           "▁" for spaces (a Replace normalizer and a Split pre-tokenizer on " "), unk "<unk>",
           <start_of_image> 255999 / <end_of_image> 256000 in the vocabulary and
           <image_soft_token> 262144 added beyond it; written by tokenizers >= 0.20, so merges are
           pairs; about 33 MB.

Merges are made the way the tiktoken/SentencePiece converters make them: for every token, each
split into two tokens of the vocabulary, in the order of the merged token's id (which is why
Llama-3 has more merges than tokens). Everything is deterministic for a given seed; the
`tokenizers` library loads the files (tests/test_tokenizer_fast.py).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

LLAMA3_SPLIT = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
LLAMA3_TEMPLATE = (
    "{{- bos_token }}\n{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' }}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n"
)
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def byte_alphabet() -> list[str]:
    """The 256 symbols of byte-level BPE (GPT-2's bytes_to_unicode), printable bytes first."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols = [chr(b) for b in printable]
    extra = 0
    for b in range(256):
        if b not in printable:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def _grow(
    base: list[str],
    n_tokens: int,
    word_start: str,
    rng: random.Random,
    foreign: tuple[str, ...],
    consonants: str = "tnshrdlcmwfgypbvkjxqz",
    vowels: str = "aeiou",
) -> list[str]:
    """`base` followed by tokens as BPE training leaves them: the pieces of words of a made-up
    language (syllables, Zipf-like frequencies), each word's prefixes syllable by syllable, with
    or without the word-start symbol; one word in eight is code or numbers (so that tokens hold
    quotes, colons, braces and backslashes, as real vocabularies do) and one in ten uses `foreign`
    pieces (accented or non-Latin letters as the vocabulary spells them). Most such tokens split
    into two tokens in more than one way, as real ones do (about 2.2 splits per token in Llama-3)."""
    syllables = [c + v for c in consonants for v in vowels]
    syllables += [c + v + k for c in consonants[:8] for v in vowels for k in "nrst"]
    code = ['{"', '":', "::", "()", "{}", "[]", "=>", "->", "//", "\\n", "0", "1", "2", "9"]
    code += [*list("{}()[]:;\"',.=<>/\\-_*#@$%&|+"), "self", "def", "return", "int"]
    tokens = list(base)
    seen = set(tokens)
    while len(tokens) < n_tokens:
        k = 1 + min(int(rng.expovariate(0.8)), 4)
        r = rng.random()
        if r < 0.125:
            word = "".join(rng.choice(code) for _ in range(k))
        else:
            top = 20 + int(rng.expovariate(1 / 60))
            pieces = syllables[:top] + list(foreign) * (r > 0.9)
            word = "".join(rng.choice(pieces) for _ in range(k))
        if rng.random() < 0.6:
            word = word_start + word
        for i in range(2, len(word) + 1):
            piece = word[:i]
            if piece not in seen:
                seen.add(piece)
                tokens.append(piece)
                if len(tokens) >= n_tokens:
                    break
    return tokens


def _merges(tokens: list[str], ids: dict[str, int], limit: int | None) -> list[tuple[str, str]]:
    """Every split of every token into two tokens, in token-id order (the converters' order)."""
    out: list[tuple[str, str]] = []
    for token in tokens:
        if len(token) < 2:
            continue
        splits = [
            (token[:i], token[i:])
            for i in range(1, len(token))
            if token[:i] in ids and token[i:] in ids
        ]
        splits.sort(key=lambda pair: (ids[pair[0]], ids[pair[1]]))
        out.extend(splits)
    if limit is not None:
        out = out[:limit]
    return out


def _dump(data: dict[str, Any]) -> str:
    """As `Tokenizer.to_str(pretty=True)` writes it (serde_json's pretty printer)."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def _added(tid: int, content: str, special: bool = True) -> dict[str, Any]:
    return {
        "id": tid,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def _decoder_entry(content: str) -> dict[str, Any]:
    return {
        "content": content,
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
        "special": True,
    }


def llama3_specials(n: int = 256) -> list[str]:
    """Llama-3.1's special tokens, ids 128000 + i."""
    names = {
        0: "<|begin_of_text|>",
        1: "<|end_of_text|>",
        4: "<|finetune_right_pad_id|>",
        6: "<|start_header_id|>",
        7: "<|end_header_id|>",
        8: "<|eom_id|>",
        9: "<|eot_id|>",
        10: "<|python_tag|>",
    }
    out, reserved = [], 0
    for i in range(n):
        if i in names:
            out.append(names[i])
        else:
            out.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return out


def llama3_tokenizer(
    dest: Path,
    *,
    n_tokens: int = 128_000,
    n_merges: int | None = 280_147,
    n_specials: int = 256,
    merges_form: str = "strings",
    seed: int = 0,
) -> Path:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json in Llama-3.1's
    layout into dest; returns the tokenizer.json path."""
    rng = random.Random(seed)
    alphabet = byte_alphabet()
    # UTF-8 bytes of é, ü, и, 中 as byte-level symbols
    foreign = ("Ã©", "Ã¼", "Ð¸", "ä¸Ń")
    tokens = _grow(alphabet, n_tokens, "Ġ", rng, foreign)
    ids = {t: i for i, t in enumerate(tokens)}
    merges = _merges(tokens, ids, n_merges)
    specials = llama3_specials(n_specials)
    bos, eos = specials[0], specials[min(9, len(specials) - 1)]
    first = n_tokens
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added(first + i, s) for i, s in enumerate(specials)],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": LLAMA3_SPLIT},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": {
            "type": "Sequence",
            "processors": [
                {
                    "type": "ByteLevel",
                    "add_prefix_space": True,
                    "trim_offsets": False,
                    "use_regex": True,
                },
                {
                    "type": "TemplateProcessing",
                    "single": [
                        {"SpecialToken": {"id": bos, "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}},
                    ],
                    "pair": [
                        {"SpecialToken": {"id": bos, "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}},
                        {"SpecialToken": {"id": bos, "type_id": 1}},
                        {"Sequence": {"id": "B", "type_id": 1}},
                    ],
                    "special_tokens": {bos: {"id": bos, "ids": [first], "tokens": [bos]}},
                },
            ],
        },
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": ids,
            "merges": _form(merges, merges_form),
        },
    }
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "tokenizer.json"
    path.write_text(_dump(data), encoding="utf-8")
    config = {
        "added_tokens_decoder": {str(first + i): _decoder_entry(s) for i, s in enumerate(specials)},
        "bos_token": bos,
        "chat_template": LLAMA3_TEMPLATE,
        "clean_up_tokenization_spaces": True,
        "eos_token": eos,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    smap = {"bos_token": _decoder_entry(bos), "eos_token": _decoder_entry(eos)}
    for entry in smap.values():
        del entry["special"]
    (dest / "special_tokens_map.json").write_text(json.dumps(smap, indent=2), encoding="utf-8")
    return path


def _form(merges: list[tuple[str, str]], form: str) -> list[Any]:
    if form == "strings":
        return [f"{a} {b}" for a, b in merges]
    if form == "pairs":
        return [[a, b] for a, b in merges]
    raise ValueError(f"merges_form is 'strings' or 'pairs', not {form!r}")


def gemma3_tokenizer(
    dest: Path,
    *,
    n_tokens: int = 262_144,
    n_merges: int | None = 514_906,
    n_unused: int = 99,
    merges_form: str = "pairs",
    seed: int = 0,
) -> Path:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json in Gemma 3's layout
    into dest (SentencePiece pieces with "▁", byte fallback); returns the tokenizer.json path."""
    rng = random.Random(seed)
    head = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "[@BOS@]"]
    head += [f"<unused{i}>" for i in range(n_unused)]
    head += ["<start_of_turn>", "<end_of_turn>"]
    byte_pieces = [f"<0x{b:02X}>" for b in range(256)]
    foreign = ("é", "ü", "и", "中")
    singles = [*sorted(set("tnshrdlcmwfgypbvkjxqzaeiou{}()[]:;\"',.=<>/\\-_*#@$%&|+0129")), "▁"]
    singles += list(foreign)
    fixed = head + byte_pieces
    # pieces grown from the single characters; the two image markers sit at 255999 and 256000
    body = _grow(singles, n_tokens - len(fixed) - 2, "▁", rng, foreign)
    boi = n_tokens - 6145 if n_tokens > 16_384 else n_tokens - 16  # 255999 in Gemma 3
    before = boi - len(fixed)
    vocab_list = fixed + body[:before] + ["<start_of_image>", "<end_of_image>"] + body[before:]
    ids = {t: i for i, t in enumerate(vocab_list)}
    merges = _merges(body, ids, n_merges)
    added_ids = [*range(len(head)), boi, boi + 1, n_tokens]
    contents = {i: vocab_list[i] for i in added_ids[:-1]}
    contents[n_tokens] = "<image_soft_token>"
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added(i, contents[i]) for i in added_ids],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"String": " "},
            "behavior": "MergedWithPrevious",
            "invert": False,
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<bos>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "<bos>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<bos>", "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": ids,
            "merges": _form(merges, merges_form),
        },
    }
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "tokenizer.json"
    path.write_text(_dump(data), encoding="utf-8")
    config = {
        "added_tokens_decoder": {str(i): _decoder_entry(contents[i]) for i in added_ids},
        "additional_special_tokens": ["<start_of_image>"],
        "boi_token": "<start_of_image>",
        "bos_token": "<bos>",
        "chat_template": GEMMA3_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eoi_token": "<end_of_image>",
        "eos_token": "<eos>",
        "image_token": "<image_soft_token>",
        "model_max_length": 1_000_000_000_000_000_019_884_624_838_656,
        "pad_token": "<pad>",
        "padding_side": "left",
        "processor_class": "Gemma3Processor",
        "sp_model_kwargs": None,
        "spaces_between_special_tokens": False,
        "tokenizer_class": "GemmaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    smap = {
        "boi_token": "<start_of_image>",
        "bos_token": _decoder_entry("<bos>"),
        "eoi_token": "<end_of_image>",
        "eos_token": _decoder_entry("<eos>"),
        "image_token": "<image_soft_token>",
        "pad_token": _decoder_entry("<pad>"),
        "unk_token": _decoder_entry("<unk>"),
    }
    (dest / "special_tokens_map.json").write_text(json.dumps(smap, indent=2), encoding="utf-8")
    return path
