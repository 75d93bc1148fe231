"""Byte-level BPE tokenizers trained offline on the built-in corpus, written in Hugging Face format.

`TokenizerSpec` says which special tokens a family uses (they take the first ids, in order), which
are bos/eos/pad, and the chat template. `write_tokenizer` trains the BPE with the `tokenizers`
library and writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and
chat_template.jinja. Training is deterministic for a given corpus and `tokenizers` version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_common.testing._files import write_json, write_text
from genai_common.testing.corpus import CORPUS


@dataclass(frozen=True)
class TokenizerSpec:
    specials: tuple[str, ...]  # get ids 0..n-1 in this order
    bos: str | None
    eos: str
    pad: str | None
    chat_template: str
    add_bos: bool = True  # the post-processor puts bos in front of every encoded text
    n_merges: int = 122  # BPE merges to learn (vocab = 256 byte symbols + specials + merges)
    model_max_length: int = 2048
    extra_config: dict[str, Any] = field(default_factory=dict)

    def id_of(self, token: str) -> int:
        return self.specials.index(token)


LLAMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

LLAMA_SPEC = TokenizerSpec(
    specials=("<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"),
    bos="<s>",
    eos="</s>",
    pad="<pad>",
    chat_template=LLAMA_TEMPLATE,
)

QWEN2_SPEC = TokenizerSpec(
    specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    bos=None,
    eos="<|im_end|>",
    pad="<|endoftext|>",
    chat_template=CHATML_TEMPLATE,
    add_bos=False,
)

GEMMA_SPEC = TokenizerSpec(
    specials=("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
    bos="<bos>",
    eos="<eos>",
    pad="<pad>",
    chat_template=GEMMA_TEMPLATE,
)


def train_bpe(spec: TokenizerSpec) -> Any:
    """Train a byte-level BPE `tokenizers.Tokenizer` on the built-in corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=256 + len(spec.specials) + spec.n_merges,
        min_frequency=1,
        special_tokens=list(spec.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    if spec.add_bos and spec.bos is not None:
        bos_id = spec.id_of(spec.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{spec.bos} $A",
            pair=f"{spec.bos} $A {spec.bos} $B",
            special_tokens=[(spec.bos, bos_id)],
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def write_tokenizer(dest: Path, spec: TokenizerSpec) -> int:
    """Write the tokenizer files of `spec` into dest; returns the tokenizer size (ids it can emit)."""
    tok = train_bpe(spec)
    write_text(dest / "tokenizer.json", tok.to_str(pretty=True) + "\n")
    size = tok.get_vocab_size(with_added_tokens=True)
    added = {
        str(spec.id_of(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in spec.specials
    }
    roles = {"bos_token": spec.bos, "eos_token": spec.eos, "pad_token": spec.pad}
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "add_bos_token": spec.add_bos and spec.bos is not None,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": spec.model_max_length,
        "chat_template": spec.chat_template,
        **roles,
        **spec.extra_config,
    }
    write_json(dest / "tokenizer_config.json", config)
    write_json(dest / "special_tokens_map.json", {k: v for k, v in roles.items() if v is not None})
    write_text(dest / "chat_template.jinja", spec.chat_template)
    return size
