"""One meaning of "peak" per kind, said where it is printed, and one byte formatter (issue 16):
"load peak" was MLX memory for an llm and the process RSS for a diffusion pipeline, both printed
as "peak", and figures mixed MiB with (decimal) GB."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import genai_common
from genai_common.bench.metrics import fmt_metric
from genai_common.model.values import gib
from genai_common.runtime import envinfo
from genai_common.runtime.memory import describe_peak, peak_of
from genai_common.workflows.common import human_bytes


def test_a_peak_says_which_peak_it_is() -> None:
    # an MLX load (llm, vlm, ml): MLX's active-memory counter, even with an RSS figure beside it
    assert describe_peak({"mlx_peak": 3 * 2**20, "rss_peak": 900 * 2**20}) == (
        "MLX active peak 3.00 MiB"
    )
    # a diffusers load on the CPU: no MLX, no torch device counter; the sampled process RSS
    assert describe_peak({"mlx_peak": None, "rss_peak": 5 * 2**30}) == "process RSS peak 5.00 GiB"
    assert peak_of({"peak_torch": 2**20, "peak_rss": 2**30}) == ("torch device peak", 2**20)
    assert describe_peak({"mlx_peak": 0, "rss_peak": None}) == ""  # no figure, no "peak 0"


def test_one_byte_formatter_everywhere() -> None:
    for n in (512, 139_584, 3 * 2**20 + 1, 17 * 2**30):
        assert fmt_metric("peak_mlx", n) == gib(n)
        assert envinfo.gib(n) == gib(n)
        assert human_bytes(n) == gib(n)
    assert gib(1_500_000_000) == "1.40 GiB"  # bench said "1.500 GB" for this, beside MiB
    assert envinfo.gib(None) == "-"


def test_no_other_byte_formatting_left_in_the_package() -> None:
    """Text with a byte unit is written by model.values.gib only; rates (GB/s, GFLOP/s) and the
    plots' axes (MiB scale) are the exceptions."""
    root = Path(genai_common.__file__).parent
    pattern = re.compile(
        r"(2\s*\*\*\s*(10|20|30)|1e9|1024)\b[^\n]*\b(KiB|MiB|GiB|KB|MB|GB)\b(?!/s)"
    )
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in {"model/values.py", "bench/plots.py"}:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("  # ")[0]  # a trailing comment may say "a few MB"
            if pattern.search(code) and not code.lstrip().startswith("#"):
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert offenders == []


def test_diagnostics_load_step_names_its_peak(tiny_llm: Path) -> None:
    pytest.importorskip("mlx_lm", reason="mlx-lm loads the tiny llm")
    from genai_common.project.diagnostics import _load_child

    summary = _load_child("llm", str(tiny_llm))["summary"]
    m = re.fullmatch(r"loaded in [\d.]+ s, MLX active peak ([\d.]+) (KiB|MiB)", summary)
    assert m and float(m.group(1)) > 0, summary
