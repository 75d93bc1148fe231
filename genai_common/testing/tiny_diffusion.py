"""Tiny Stable Diffusion pipelines built from diffusers classes and saved by diffusers.

sd (SD 1.x layout): UNet2DConditionModel (2 blocks, cross-attention 32), AutoencoderKL (4 blocks,
so the latent is 1/8 of the image as in SD: 64x64 -> 8x8x4, scaling factor 0.18215), CLIPTextModel
(2 layers, hidden 32, 77 positions), CLIPTokenizer (vocab.json + merges.txt trained offline on the
built-in corpus with CLIP's normalisation and end-of-word suffix), PNDMScheduler with SD's settings.
No safety checker (requires_safety_checker false).

sd3 (SD3 layout, no T5): SD3Transformer2DModel (2 joint blocks, 2 heads of 16, patch 2),
AutoencoderKL with SD3's latent settings (16 channels, scaling 1.5305, shift 0.0609, no quant
convs), two CLIPTextModelWithProjection (hidden 32 and 48, like CLIP-L and CLIP-G unequal) with
their CLIPTokenizers, FlowMatchEulerDiscreteScheduler (shift 3.0), text_encoder_3 and tokenizer_3
null. Without T5 the pipeline feeds the transformer the two CLIP hidden states side by side,
zero-padded to joint_attention_dim, followed by max_sequence_length (256) zero rows of that width;
the pooled projections are the two CLIP text_embeds side by side. So joint_attention_dim must be
at least 32 + 48 (128 here, wider as SD3's 4096 is wider than 768 + 1280) and
pooled_projection_dim exactly 32 + 48 = 80.

Needs torch, diffusers and transformers; all imports happen inside the functions.
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
# sd3: the two CLIP widths (CLIP-L 768 and CLIP-G 1280 in SD3), the transformer's joint width
# (>= their sum; SD3's is T5's 4096) and SD3's VAE latent settings (its published vae config).
SD3_TEXT_HIDDEN = (32, 48)
SD3_JOINT_DIM = 128
SD3_LATENT_CHANNELS = 16
SD3_SCALING_FACTOR = 1.5305
SD3_SHIFT_FACTOR = 0.0609


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


def build_clip_tokenizer(workdir: Path, **kwargs: Any) -> Any:
    """A CLIPTokenizer on the corpus-trained vocab.json + merges.txt written into `workdir`;
    kwargs go to the tokenizer (SD3's second tokenizer pads with "!", as open_clip does)."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    (workdir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (workdir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(
        vocab=str(workdir / "vocab.json"),
        merges=str(workdir / "merges.txt"),
        model_max_length=77,
        **kwargs,
    )


def tiny_vae(**settings: Any) -> Any:
    """The tiny four-level AutoencoderKL (8/16/16/16 channels: a /8 latent as in SD) with the
    family's latent settings (`latent_channels`, `scaling_factor`, ...)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        **settings,
    ).eval()


def _components(tokenizer: Any, seed: int) -> dict[str, Any]:
    import torch
    from diffusers import PNDMScheduler, UNet2DConditionModel
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
    vae = tiny_vae(latent_channels=4, scaling_factor=0.18215)
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


def _clip_with_projection(tokenizer: Any, hidden: int, act: str, seed: int) -> Any:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act=act,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModelWithProjection(config).eval()


def _sd3_components(tokenizer: Any, tokenizer_2: Any, seed: int) -> dict[str, Any]:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

    torch.manual_seed(seed)
    heads, head_dim = 2, 16
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=SD3_LATENT_CHANNELS,
        out_channels=SD3_LATENT_CHANNELS,
        num_layers=2,
        attention_head_dim=head_dim,
        num_attention_heads=heads,
        joint_attention_dim=SD3_JOINT_DIM,
        caption_projection_dim=heads * head_dim,
        pooled_projection_dim=sum(SD3_TEXT_HIDDEN),
        pos_embed_max_size=16,
    )
    torch.manual_seed(seed + 1)
    vae = tiny_vae(
        latent_channels=SD3_LATENT_CHANNELS,
        scaling_factor=SD3_SCALING_FACTOR,
        shift_factor=SD3_SHIFT_FACTOR,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    hidden, hidden_2 = SD3_TEXT_HIDDEN
    return {
        "transformer": transformer.eval(),
        "vae": vae.eval(),
        "text_encoder": _clip_with_projection(tokenizer, hidden, "quick_gelu", seed + 2),
        "tokenizer": tokenizer,
        "text_encoder_2": _clip_with_projection(tokenizer_2, hidden_2, "gelu", seed + 3),
        "tokenizer_2": tokenizer_2,
        "text_encoder_3": None,
        "tokenizer_3": None,
        "scheduler": FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
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


def _pipeline(variant: str, workdir: Path, seed: int) -> Any:
    tokenizer = build_clip_tokenizer(workdir)
    if variant == "sd3":
        from diffusers import StableDiffusion3Pipeline

        tokenizer_2 = build_clip_tokenizer(workdir, pad_token="!")
        return StableDiffusion3Pipeline(**_sd3_components(tokenizer, tokenizer_2, seed))
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        **_components(tokenizer, seed),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build(dest: Path, variant: str, seed: int) -> Path:
    """Variant sd or sd3 (genai_common.testing.tiny.TINY_BUILDERS; tiny.build checks it)."""
    with _quiet_libraries(), tempfile.TemporaryDirectory(prefix="genai-tiny-clip-") as tmp:
        pipe = _pipeline(variant, Path(tmp), seed)
        pipe.save_pretrained(str(dest), safe_serialization=True)
        # transformers 5 saves only tokenizer.json; the slow CLIPTokenizer of transformers 4 (which
        # diffusers pipelines load there) needs the vocab.json + merges.txt that SD repos carry.
        for folder in ("tokenizer", "tokenizer_2"):
            if (dest / folder).is_dir():
                for name in ("vocab.json", "merges.txt"):
                    shutil.copyfile(Path(tmp) / name, dest / folder / name)
    return dest
