"""The terminal renderer shows model-supplied text as text: brackets are not rich markup."""

import io

from genai_common.doctor.render import print_rich
from genai_common.findings import Finding, Report


def _render(report: Report) -> str:
    out = io.StringIO()
    print_rich(report, file=out)
    return out.getvalue()


def test_brackets_in_findings_facts_and_path_are_shown_not_parsed() -> None:
    report = Report("models/[odd]/m", kind="llm", model_type="llama")
    report.add(
        Finding("ENV001", "error", "install mlx[cpu] here", "mark - [/] done", "config.json")
    )
    report.facts["loader"] = "mlx[cpu]"
    text = _render(report)
    assert "mlx[cpu] here [config.json]" in text
    assert "mark - [/] done" in text
    assert "models/[odd]/m" in text
    assert "mlx[cpu]" in text.split("here", 1)[1]


def test_clean_report_names_the_path() -> None:
    text = _render(Report("models/[x]", kind="ml"))
    assert "models/[x]" in text
