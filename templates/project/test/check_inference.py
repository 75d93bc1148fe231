"""Inference test: a quick run on the model (a few tokens, a tiny image or one forward pass)."""

from genai_common.project import assert_step, find_project, inference_test, standalone


def test_quick_inference() -> None:
    assert_step(inference_test(find_project(__file__)))


if __name__ == "__main__":
    standalone(test_quick_inference)
