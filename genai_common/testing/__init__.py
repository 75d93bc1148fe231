"""Tiny real-format models for tests and demos, and the pytest plugin that serves them.

tiny.py            build(kind, dest, *, variant=None, seed=0, force=False) and `genai tiny`
tiny_llm.py        llama / qwen2 / gemma / llama-4bit / deepseek_v3 (MLA + MoE) (mlx-lm)
tiny_vlm.py        qwen2_vl / paligemma (mlx-vlm)
tiny_diffusion.py  sd: Stable Diffusion 1.x (UNet); sd3: SD3 transformer without T5 (diffusers; needs torch)
tiny_ml.py         an MLX MLP and load_tiny_ml(path)
bpe.py, corpus.py  byte-level BPE tokenizers trained offline on the package corpus (genai_common.corpus)
train.py           the build-time training of the llm, the vlm text side (MLX, CPU, deterministic)
tiny_cache.py      trained builds cached per seed and version, written atomically
quality.py         perplexity, greedy chat reply, KL between checkpoints (tests, benchmarks)
plugin.py          pytest fixtures (entry point pytest11 `genai_common`)
"""
