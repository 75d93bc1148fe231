"""Numbers read from configs, made safe to use: positive counts with a ceiling, per-layer lists,
and set arithmetic whose work is bounded by what was stored, never by a config value (a hostile
num_hidden_layers of 2**40 must not allocate one entry per layer)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Counts and sizes above this are not a model (2**53: floats are still exact below it); the views
# treat them as unknown and CFG003 names them, so no estimate multiplies or formats them.
MAX_COUNT = 2**53


def positive_int(value: Any) -> int | None:
    """value when it is a positive int (bools and floats-with-fractions excluded), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def positive_count(value: Any) -> int | None:
    """positive_int up to MAX_COUNT, else None: a size the checks may multiply and format."""
    n = positive_int(value)
    return n if n is not None and n <= MAX_COUNT else None


def per_layer_counts(value: Any) -> list[int] | None:
    """A list of positive counts, one per layer (OpenELM's num_query_heads, num_kv_heads)."""
    if not isinstance(value, list) or not value:
        return None
    counts = [positive_count(v) for v in value]
    return None if None in counts else counts  # type: ignore[return-value]


def first_missing(found: set[int], n: int, limit: int) -> list[int]:
    """The first `limit` numbers of range(n) that are not in `found`, in order. The work is bounded
    by len(found) + limit, never by n: n comes from a config and may be absurd (2**40)."""
    out: list[int] = []
    i = 0
    while i < n and len(out) < limit:
        if i not in found:
            out.append(i)
        i += 1
    return out


def is_range(found: set[int], n: int) -> bool:
    """found == set(range(n)) for a set of non-negative ints, without building range(n)."""
    return len(found) == n and (n == 0 or (min(found) == 0 and max(found) == n - 1))


def numel(shape: Any) -> int:
    """The number of elements of a shape (a list of non-negative ints)."""
    n = 1
    for d in shape:
        n *= d
    return n


def gib(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number at or above 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"
