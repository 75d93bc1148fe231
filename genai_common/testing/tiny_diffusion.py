"""A tiny Stable Diffusion (1.x layout) pipeline built from diffusers classes and saved by diffusers.

Components: UNet2DConditionModel (2 blocks, cross-attention 32), AutoencoderKL (4 blocks, so the
latent is 1/8 of the image as in SD: 64x64 -> 8x8x4, scaling factor 0.18215), CLIPTextModel
(2 layers, hidden 32, 77 positions), CLIPTokenizer (vocab.json + merges.txt trained offline on the
built-in corpus with CLIP's normalisation and end-of-word suffix), PNDMScheduler with SD's settings.
No safety checker (requires_safety_checker false). Needs torch, diffusers and transformers; all
imports happen inside the functions.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genai_common.testing.corpus import CORPUS

CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
TEXT_HIDDEN = 32


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE (GPT-2/CLIP), in byte order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    symbols: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def _clip_words() -> Counter[tuple[str, ...]]:
    """Corpus words as CLIP sees them: normalised, split, byte symbols, last one with '</w>'."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    splitter = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    words: Counter[tuple[str, ...]] = Counter()
    for line in CORPUS.splitlines():
        for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(line)):
            words[(*word[:-1], word[-1] + "</w>")] += 1
    return words


def _merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def clip_vocab_and_merges(n_merges: int = 160) -> tuple[dict[str, int], list[str]]:
    """Learn CLIP-style BPE merges on the built-in corpus; return (vocab, merges).

    A plain BPE loop in Python (most frequent pair first, ties broken by the pair's text), because
    the `tokenizers` trainer numbers end-of-word symbols in hash order, so its tie-breaking (and
    so its merges) changes from run to run. The vocabulary is laid out like CLIP's: every byte
    symbol, every byte symbol + '</w>', the merged tokens in merge order, then the two specials.
    """
    words = _clip_words()
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        words = Counter({_merge(w, best): c for w, c in words.items()})
    alphabet = byte_symbols()
    vocab_list = alphabet + [s + "</w>" for s in alphabet]
    seen = set(vocab_list)
    for a, b in merges:
        if a + b not in seen:
            vocab_list.append(a + b)
            seen.add(a + b)
    vocab_list += [CLIP_BOS, CLIP_EOS]
    return {t: i for i, t in enumerate(vocab_list)}, [f"{a} {b}" for a, b in merges]


def build_clip_tokenizer(workdir: Path) -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    (workdir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (workdir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(
        vocab=str(workdir / "vocab.json"),
        merges=str(workdir / "merges.txt"),
        model_max_length=77,
    )


def _components(tokenizer: Any, seed: int) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.18215,
    )
    torch.manual_seed(seed + 2)
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TEXT_HIDDEN,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = CLIPTextModel(text_config).eval()
    scheduler = PNDMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
    )
    return {
        "unet": unet.eval(),
        "vae": vae.eval(),
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
    }


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence transformers' and diffusers' warnings and progress bars while building, then
    restore them (saving a 4 MiB model needs no progress bar)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in (tlog, dlog)]
    for lib, _, _ in saved:
        lib.set_verbosity(lib.ERROR)
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


def build(dest: Path, variant: str, seed: int) -> Path:
    """The one variant, sd (genai_common.testing.tiny.KINDS; tiny.build checks it)."""
    with _quiet_libraries(), tempfile.TemporaryDirectory(prefix="genai-tiny-clip-") as tmp:
        from diffusers import StableDiffusionPipeline

        tokenizer = build_clip_tokenizer(Path(tmp))
        pipe = StableDiffusionPipeline(
            **_components(tokenizer, seed),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(str(dest), safe_serialization=True)
        # transformers 5 saves only tokenizer.json; the slow CLIPTokenizer of transformers 4 (which
        # diffusers pipelines load there) needs the vocab.json + merges.txt that SD repos carry.
        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(Path(tmp) / name, dest / "tokenizer" / name)
    return dest
