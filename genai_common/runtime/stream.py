"""Generation metrics from token arrival times.

``measure_stream`` consumes a token iterator (mlx-lm's ``stream_generate``, mlx-vlm's
``stream_generate``, or anything that yields one token per item) and stamps each item as it
arrives. From the stamps:

- TTFT: first arrival minus ``start`` (the moment before the first ``next()``, or yours).
- decode tokens/s: (N - 1) / (t_last - t_first). The first token belongs to the prompt phase, so
  it is not counted in the decode window. mlx-lm reports (N) / (t_now - t_first) instead, which
  is biased high by N/(N-1) and meaningless for the first few tokens.
- inter-token latency (ITL) p50/p90/p99 from the gaps between arrivals.
- e2e: last arrival minus ``start``.

An item whose ``generation_tokens`` did not grow is not a new token (mlx-vlm yields its last
token a second time with the finish reason, and an empty item when nothing was generated): its
text and figures are kept, but it is not an arrival.

When items carry the library's own figures (mlx-lm ``GenerationResponse``, mlx-vlm
``GenerationResult``: prompt_tokens, prompt_tps, generation_tokens, generation_tps,
peak_memory), the last item's values are kept in ``library`` to show beside ours. Time the caller
spends between items counts in both ours and theirs: consume quickly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable
from typing import Any

from genai_common.runtime.timing import sorted_quantile

LIBRARY_FIELDS = (
    "prompt_tokens",
    "prompt_tps",
    "generation_tokens",
    "generation_tps",
    "peak_memory",
    "cached_tokens",
    "finish_reason",
)


@dataclasses.dataclass(frozen=True)
class StreamMetrics:
    """Token arrival times (seconds after ``start``) and what follows from them."""

    arrivals: tuple[float, ...]
    text: str = ""
    library: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return len(self.arrivals)

    @property
    def ttft(self) -> float | None:
        return self.arrivals[0] if self.arrivals else None

    @property
    def e2e(self) -> float | None:
        return self.arrivals[-1] if self.arrivals else None

    @property
    def decode_time(self) -> float | None:
        return self.arrivals[-1] - self.arrivals[0] if len(self.arrivals) > 1 else None

    @property
    def decode_tps(self) -> float | None:
        """(N - 1) / (t_last - t_first); None with fewer than two tokens."""
        span = self.decode_time
        if span is None:
            return None
        return (self.n_tokens - 1) / span if span > 0 else math.inf

    @property
    def itl(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False))

    def _itl_quantile(self, q: float) -> float | None:
        gaps = sorted(self.itl)
        return sorted_quantile(gaps, q) if gaps else None

    @property
    def itl_p50(self) -> float | None:
        return self._itl_quantile(0.50)

    @property
    def itl_p90(self) -> float | None:
        return self._itl_quantile(0.90)

    @property
    def itl_p99(self) -> float | None:
        return self._itl_quantile(0.99)

    @property
    def finish_reason(self) -> str | None:
        return self.library.get("finish_reason")

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "n_tokens": self.n_tokens,
            "ttft": self.ttft,
            "e2e": self.e2e,
            "decode_tps": self.decode_tps,
            "itl_p50": self.itl_p50,
            "itl_p90": self.itl_p90,
            "itl_p99": self.itl_p99,
            "arrivals": list(self.arrivals),
            "library": dict(self.library),
        }


def _text_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    text = getattr(item, "text", None)
    return text if isinstance(text, str) else ""


def measure_stream(iterator: Iterable[Any], *, start: float | None = None) -> StreamMetrics:
    """Consume ``iterator`` (one token per item) and time each arrival.

    start: a ``time.perf_counter()`` reading taken before the request began (for example before
    tokenizing); by default, the moment just before the first item is asked for.
    """
    clock = time.perf_counter
    stamps: list[float] = []
    pieces: list[str] = []
    last: Any = None
    iterator = iter(iterator)
    begin = clock() if start is None else start
    seen = 0
    for item in iterator:
        now = clock()
        pieces.append(_text_of(item))
        last = item
        count = getattr(item, "generation_tokens", None)
        if isinstance(count, int):
            if count <= seen:  # no new token: mlx-vlm repeats its last one with the finish reason
                continue
            seen = count
        stamps.append(now)
    library = {}
    if last is not None:
        for name in LIBRARY_FIELDS:
            value = getattr(last, name, None)
            if value is not None:
                library[name] = value
    return StreamMetrics(
        arrivals=tuple(t - begin for t in stamps), text="".join(pieces), library=library
    )
