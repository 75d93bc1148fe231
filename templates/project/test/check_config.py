"""Config validation: the doctor on configs, tokenizer files and index files, no weights read."""

from genai_common.project import assert_step, check_config, find_project, standalone


def test_config_is_valid() -> None:
    assert_step(check_config(find_project(__file__)))


if __name__ == "__main__":
    standalone(test_config_is_valid)
