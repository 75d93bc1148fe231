"""The text the tiny tokenizers learn from: the package corpus (genai_common.corpus), every
document's body joined. One corpus, one place: edit the files there."""

from __future__ import annotations

from genai_common import corpus

CORPUS = corpus.training_text()
