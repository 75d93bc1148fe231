"""Quality test: the model's outputs, not only its files (issue 10 of genai-templates).

llm / vlm: the greedy reply to the chat prompt is the embedded tiny model's known answer, or
looks like text for any other model. With a reference ([tool.genai] source), `genai verify`
compares the outputs position by position. `nox -s verify -- --against PATH_OR_ID` runs the same
against any reference and records a row in reference/RESULTS.md.
"""

import pytest

from genai_common.project import assert_step, find_project, standalone
from genai_common.project.quality import check_quality


def test_quality() -> None:
    steps = check_quality(find_project(__file__))
    if not steps:
        pytest.skip("no reference: set [tool.genai] source or run nox -s verify -- --against ID")
    for step in steps:
        assert_step(step)


if __name__ == "__main__":
    standalone(test_quality)
