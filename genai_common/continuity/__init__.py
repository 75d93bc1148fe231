"""Session continuity and methodology review for generated projects.

`genai session start` reads the living documents, checks the environment, lists what changed since
the last `genai session end` and runs the static doctor; `genai session end` appends a dated
"Session End" block to TODO.md without touching a byte the user wrote; `genai review` runs the
methodology checks (also a `repo-review` plugin). Modules here import nothing heavy at top level.
"""
