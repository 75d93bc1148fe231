"""Shape validation: tensor shapes and dtypes from the safetensors headers against the config."""

from genai_common.project import assert_step, check_model, find_project, standalone


def test_shapes_match_config() -> None:
    assert_step(check_model(find_project(__file__)))


if __name__ == "__main__":
    standalone(test_shapes_match_config)
