"""A small built-in English corpus for training the tiny tokenizers offline (our own text)."""

from __future__ import annotations

CORPUS = """\
The tiny model is a real model in every way that a loader can see, and in no way that matters.
It has a config, a tokenizer, a chat template and weights with the names the checkpoint uses.
Its weights are random, so what it says is noise, but the noise has the right shape.
A test that loads it checks the loader, the shapes, the tokenizer and the generation loop.
Hello! How are you today? I am fine, thank you. What would you like to talk about?
Tell me about the weather. The weather is sunny and warm, with a light wind from the west.
Please write a short poem about the sea. The sea is wide, the sea is deep, the sea is calm.
What is the capital of France? The capital of France is Paris. Paris is a large city.
Explain attention in one sentence. Attention mixes the values of all tokens, weighted by how
well each key matches the query of the token that is being computed.
A language model predicts the next token from the tokens before it. It repeats this step until
it reaches the end of the sequence or the limit on new tokens.
An image is split into patches; each patch becomes a vector; the vision tower turns the
vectors into features that the language model reads beside the text.
A diffusion model starts from noise and removes a little of it at each step, guided by text.
Memory, time and shape: measure them before a long run, and write down what you found.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 16 32 64 128 256 512 1024 2048 4096.
Code: def add(a, b): return a + b. for i in range(10): print(i). x = [1, 2, 3].
user: Can you help me? assistant: Of course. system: You are a helpful assistant.
The quick brown fox jumps over the lazy dog. The five boxing wizards jump quickly.
Lists, tables and charts; colors like red, green, blue, black and white; cats and dogs.
Quantization stores each weight in a few bits with a scale and a bias for every group.
Read the config, read the tensor shapes, compare them with what the target expects.
"""
