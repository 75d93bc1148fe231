"""Tooling of the genai-templates repository, not shipped in the genai-common wheel.

    tools.templating   snapshot this template, render a project, run its diagnostics (the demo
                       and the template tests)
    tools.demo         the main job on the embedded tiny Llama, end to end (`nox -s demo`)

Run from the repository root (`python -m tools.demo`, `python -m tools.templating demo DEST`);
pytest finds the package through `pythonpath = ["."]` in pyproject.toml.
"""
