"""The package's layers import only downward, and nothing imports in a cycle.

Every `import` and `from ... import` in genai_common is read from the source (function-level ones
too; those under `if TYPE_CHECKING:` are for type checkers only and are skipped), resolved to the
module it names, and checked against the layer order in reference/ARCHITECTURE.md. Module names
kept as strings (the command table, the doctor's family table, child-process targets) are plugin
points loaded by name; they are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import genai_common

ROOT = Path(genai_common.__file__).parent

# Bottom to top; a module may import its own layer and the layers below it.
LAYERS: list[tuple[str, ...]] = [
    ("findings",),
    ("formats", "corpus"),
    ("model",),
    ("runtime",),
    ("testing",),
    ("distributed",),
    ("doctor",),
    ("verify",),
    ("bench",),
    ("workflows",),
    ("project",),
    ("cli", "__init__", "__main__"),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def _resolve(name: str) -> str | None:
    """The genai_common module an import names (a package's module for `from pkg import mod`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    """The genai_common modules `module` imports at run time."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_blocks(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names]
            if any(f"{base}.{a.name}" not in MODULES for a in node.names):
                names.append(base)  # a name from the package itself, not a submodule
        for name in names:
            if name.startswith("genai_common"):
                target = _resolve(name)
                if target and target != module:
                    out.add(target)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def test_every_package_has_a_layer() -> None:
    assert sorted({layer(m) for m in MODULES} - set(RANK)) == []


def test_findings_imports_nothing_of_ours() -> None:
    assert GRAPH["genai_common.findings"] == set()


def test_layers_import_only_downward() -> None:
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if RANK[layer(t)] > RANK[layer(m)]
    )
    assert upward == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert [" -> ".join(c) for c in cycles] == []


def test_rule_families_never_import_each_other() -> None:
    rules = "genai_common.doctor.rules."
    crossing = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if m.startswith(rules)
        for t in targets
        if t.startswith(rules)
    )
    assert crossing == []


JUDGING = {"finding", "rule", "Finding", "Report", "run_rule", "stamp", "Skip"}


def test_the_model_layer_judges_nothing() -> None:
    """formats/ and model/ read and describe: they never make a finding (problems are data).
    They may share findings' constants (KINDS, PROJECT_KINDS), not its judging names."""
    judging = []
    for m, path in MODULES.items():
        if layer(m) not in ("formats", "corpus", "model"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "genai_common.findings":
                judging += [f"{m}: {a.name}" for a in node.names if a.name in JUDGING]
    assert judging == []


def test_the_walker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The checks above can fail: an upward import inside a function is an edge."""
    assert "genai_common.model.text" in GRAPH["genai_common.model.model_dir"]  # in a property
    assert "genai_common.doctor.inspect" in GRAPH["genai_common.doctor"]  # in a function
    assert "genai_common.model.model_dir" not in GRAPH["genai_common.model.text"]  # TYPE_CHECKING
