"""Load test: the model loads with its kind's loader, in a child process."""

from genai_common.project import assert_step, find_project, load_test, standalone


def test_model_loads() -> None:
    assert_step(load_test(find_project(__file__)))


if __name__ == "__main__":
    standalone(test_model_loads)
