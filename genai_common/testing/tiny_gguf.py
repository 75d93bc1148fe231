"""A llama GGUF written from a Hugging Face llama folder with the `gguf` package's GGUFWriter, the
way llama.cpp's convert_hf_to_gguf.py lays it out (gguf 0.19.0): tensor names `token_embd`,
`blk.N.attn_q` ..., `output_norm`, `output`; q and k rows permuted so that the rotary halves are
interleaved (llama.cpp's `permute`; transformers' GGUF reader reverses it); 1-D tensors in F32,
2-D in the requested type (F16, Q8_0, Q4_0); a byte-level BPE tokenizer as `gpt2` with its merges,
padded with unused `[PADn]` tokens up to the embedding rows, and the chat template.

    write_llama_gguf(hf_dir, dest, qtype="F16", permute_qk=True) -> Path

Used by the tests of `genai convert` from GGUF and `genai verify --against FILE.gguf`.
"""

from __future__ import annotations

import json
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def permute(w: Any, n_head: int, n_head_kv: int | None = None) -> Any:
    """llama.cpp's q/k permutation (convert_hf_to_gguf.py LlamaModel.permute)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def gguf_name(hf_name: str) -> str:
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    if hf_name == "lm_head.weight":
        return "output.weight"
    parts = hf_name.split(".")  # model.layers.N.<module>.<sub>.weight
    module = ".".join(parts[3:-1])
    return f"blk.{parts[2]}.{NAMES[module]}.{parts[-1]}"


def write_llama_gguf(
    hf_dir: str | Path, dest: str | Path, qtype: str = "F16", *, permute_qk: bool = True
) -> Path:
    """The llama GGUF of `hf_dir` at `dest`. `permute_qk=False` writes q and k as Hugging Face
    stores them: the converter bug whose GGUF reads back with the rotary halves scrambled."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    hf_dir, dest = Path(hf_dir), Path(dest)
    cfg = json.loads((hf_dir / "config.json").read_text())
    tensors: dict[str, Any] = {}
    for f in sorted(hf_dir.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads")
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    vocab = tensors["model.embed_tokens.weight"].shape[0]

    w = gguf.GGUFWriter(str(dest), "llama")
    w.add_name(hf_dir.name or "tiny-llama")
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv or n_head)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-5)))
    w.add_vocab_size(vocab)
    file_type = {"F16": 1, "Q8_0": 7, "Q4_0": 2}[qtype]
    w.add_file_type(file_type)
    _tokenizer(w, hf_dir, vocab)

    target = getattr(gguf.GGMLQuantizationType, qtype)
    for name in sorted(tensors):
        data = tensors[name].astype(np.float32)
        if not permute_qk:
            pass
        elif name.endswith("self_attn.q_proj.weight"):
            data = permute(data, n_head, n_head)
        elif name.endswith("self_attn.k_proj.weight"):
            data = permute(data, n_head, n_kv)
        if data.ndim == 1:
            w.add_tensor(gguf_name(name), data)
        elif qtype == "F16":
            w.add_tensor(gguf_name(name), data.astype(np.float16))
        else:
            w.add_tensor(gguf_name(name), gguf.quants.quantize(data, target), raw_dtype=target)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dest


def _tokenizer(w: Any, hf_dir: Path, vocab: int) -> None:
    """The byte-level BPE of tokenizer.json as llama.cpp's `gpt2` tokenizer model."""
    tok = json.loads((hf_dir / "tokenizer.json").read_text())
    model = tok["model"]
    by_id = {i: t for t, i in model["vocab"].items()}
    special = {a["id"] for a in tok.get("added_tokens", []) if a.get("special")}
    tokens, types = [], []
    for i in range(vocab):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(3 if i in special else 1)  # CONTROL, NORMAL
        else:
            tokens.append(f"[PAD{i}]")
            types.append(5)  # UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    tcfg = json.loads((hf_dir / "tokenizer_config.json").read_text())
    cfg = json.loads((hf_dir / "config.json").read_text())
    for key, add in (
        ("bos_token_id", w.add_bos_token_id),
        ("eos_token_id", w.add_eos_token_id),
        ("pad_token_id", w.add_pad_token_id),
    ):
        if isinstance(cfg.get(key), int):
            add(cfg[key])
    w.add_add_bos_token(bool(tcfg.get("add_bos_token", False)))
    template = hf_dir / "chat_template.jinja"
    if template.exists():
        w.add_chat_template(template.read_text())
    elif tcfg.get("chat_template"):
        w.add_chat_template(tcfg["chat_template"])
