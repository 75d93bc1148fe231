"""What the installed MLX loaders read and support, found WITHOUT importing them.

Importing mlx-lm costs seconds (about 10 s with torch installed), so `find_spec` gives the package
folder without running it, the architectures are the file names under `models/` (mlx-lm: one file
per architecture; mlx-vlm: one package per architecture), and MODEL_REMAPPING is read from
`utils.py` as source text (a dict literal of strings; ast.literal_eval for anything else).
Neither ast nor importlib.util is imported on the common path: each costs about a millisecond of
the doctor's start-up.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache

# Files under mlx_lm/models that are helpers, not architectures.
_HELPERS = frozenset(
    {
        "__init__",
        "base",
        "cache",
        "rope_utils",
        "switch_layers",
        "activations",
        "pipeline",
        "ssm",
        "gated_delta",
        "bitlinear_layers",
        "mla",
        "attention",
    }
)


def find_spec(name: str):  # -> ModuleSpec | None
    """importlib.util.find_spec for a top-level name (the module if imported, else the import
    system's finders), without importing importlib.util and contextlib."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None:
            spec = find(name, None)
            if spec is not None:
                return spec
    return None


def installed(name: str) -> bool:
    """Whether a top-level package can be imported here (found, not imported)."""
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _package_dir(name: str) -> str | None:
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.fspath(next(iter(spec.submodule_search_locations)))


_REMAP_RE = re.compile(r"^MODEL_REMAPPING\s*(?::[^=]*)?=\s*\{", re.MULTILINE)


_HEAD_CHARS = 16_384  # MODEL_REMAPPING sits near the top of utils.py (mlx-lm: line 48 of ~1300)


def _remap_literal(text: str) -> str | None:
    """The `{...}` of the first MODEL_REMAPPING assignment, up to its matching brace; None when
    there is none or it does not close within `text`."""
    found = _REMAP_RE.search(text)
    if found is None:
        return None
    depth = 0
    for i in range(found.end() - 1, len(text)):  # the dict literal: up to its matching brace
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[found.end() - 1 : i + 1]
    return None


def _remapping(utils_py: str | os.PathLike[str]) -> dict[str, str]:
    """MODEL_REMAPPING's literal from the module's source text (never imported, never parsed whole;
    read whole only when the literal does not close within its first _HEAD_CHARS characters)."""
    try:
        with open(utils_py, encoding="utf-8") as fh:
            text = fh.read(_HEAD_CHARS)
            literal = _remap_literal(text)
            if literal is None and len(text) == _HEAD_CHARS:
                literal = _remap_literal(text + fh.read())
    except (OSError, UnicodeDecodeError):
        return {}
    if literal is None:
        return {}
    value = _string_dict(literal)
    if value is None:  # not a plain dict of strings: let Python's own parser read it
        import ast

        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


_GAP = re.compile(r"(?:\s|#[^\n]*)*")  # whitespace and comments
# one `"key": "value"` entry, either quote, no escapes (then ast reads the literal instead)
_ENTRY = re.compile(
    r"""(?:"(?P<k1>[^"\\\n]*)"|'(?P<k2>[^'\\\n]*)')\s*:\s*"""
    r"""(?:"(?P<v1>[^"\\\n]*)"|'(?P<v2>[^'\\\n]*)')"""
)


def _string_dict(literal: str) -> dict[str, str] | None:
    """`{"a": "b", 'c': 'd',  # comment}` read exactly as ast.literal_eval reads it, or None when
    the literal holds anything else (escapes, numbers, nesting, expressions)."""
    if not literal.startswith("{"):
        return None
    out: dict[str, str] = {}
    pos = _GAP.match(literal, 1).end()
    while not literal.startswith("}", pos):
        m = _ENTRY.match(literal, pos)
        if m is None:
            return None
        key = m["k1"] if m["k1"] is not None else m["k2"]
        out[key] = m["v1"] if m["v1"] is not None else m["v2"]
        pos = _GAP.match(literal, m.end()).end()
        if literal.startswith(",", pos):
            pos = _GAP.match(literal, pos + 1).end()
        elif not literal.startswith("}", pos):
            return None
    return out if pos == len(literal) - 1 else None


@cache
def supported(package: str) -> tuple[frozenset[str], dict[str, str]] | None:
    """(architectures, remapping) of an installed mlx-lm / mlx-vlm, or None when not installed."""
    root = _package_dir(package)
    models = os.path.join(root, "models") if root is not None else ""
    if root is None or not os.path.isdir(models):
        return None
    # mlx-lm: one file per architecture; mlx-vlm: one package per architecture.
    names: set[str] = set()
    with os.scandir(models) as entries:
        for entry in entries:
            if entry.name.startswith(("_", ".")):
                continue
            if entry.name.endswith(".py"):
                names.add(entry.name[:-3])
            elif entry.is_dir():
                names.add(entry.name)
    names -= _HELPERS
    return frozenset(names), _remapping(os.path.join(root, "utils.py"))


@cache
def transformers_model_types() -> frozenset[str] | None:
    """The model families the installed transformers has a folder for (transformers/models/*,
    listed, not imported), or None when transformers is not installed."""
    root = _package_dir("transformers")
    models = os.path.join(root, "models") if root is not None else ""
    if root is None or not os.path.isdir(models):
        return None
    with os.scandir(models) as entries:
        return frozenset(
            e.name for e in entries if e.is_dir() and not e.name.startswith(("_", "."))
        )


def resolve(package: str, model_type: str) -> str | None:
    """The architecture module the loader would import for model_type, or None if it has none."""
    info = supported(package)
    if info is None:
        return None
    names, remap = info
    key = model_type.lower() if package == "mlx_vlm" else model_type
    target = remap.get(key, key)
    if package == "mlx_vlm":
        target = target.replace("-", "_")
    return target if target in names else None


# patterns of paths a static run of most models never takes: compiled on first use through re's
# cache (compiling costs ~0.1 ms each at every start otherwise)
_FOLLOWS_RE = r"""lm_head\.weight["']\s+not\s+in\s"""


@cache
def head_follows_weights(package: str, model_type: str) -> bool:
    """Whether the architecture module the loader builds model_type with drops or fills its
    lm_head by what the checkpoint stores (its sanitize() tests `"lm_head.weight" not in
    weights`: mlx-lm's gemma3_text, minicpm, recurrent_gemma; mlx-vlm's florence2, gemma3...):
    then a stored head and a tied config, or the reverse, both load. Read from the module's
    source text, never imported."""
    arch = resolve(package, model_type)
    root = _package_dir(package)
    if arch is None or root is None:
        return False
    where = os.path.join(root, "models", arch)
    paths = [where + ".py"] if package == "mlx_lm" else []
    if os.path.isdir(where):
        with os.scandir(where) as entries:
            paths += [e.path for e in entries if e.name.endswith(".py")]
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                if re.search(_FOLLOWS_RE, fh.read()):
                    return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


_ROPE_THETA_DEFAULT = re.compile(
    r"^\s*rope_theta\s*:\s*[\w\[\], |]*=\s*([0-9][0-9_.eE+-]*)", re.MULTILINE
)


@cache
def rope_reading(package: str, model_type: str) -> tuple[bool, float | None] | None:
    """How the architecture module the loader builds model_type with reads RoPE: (whether its
    source mentions `rope_parameters` at all, the default of its `rope_theta` field). None when
    the loader or the module cannot be found. mlx-lm 0.32's llama, mistral, qwen2, phi3 ...
    read only the top-level `rope_theta` / `rope_scaling`; transformers 5 writes them only inside
    `rope_parameters`. Read from the module's source text, never imported."""
    arch = resolve(package, model_type)
    root = _package_dir(package)
    if arch is None or root is None or package != "mlx_lm":
        return None
    text = _read(os.path.join(root, "models", arch + ".py"))
    if text is None:
        return None
    found = _ROPE_THETA_DEFAULT.search(text)
    try:
        default = float(found.group(1).replace("_", "")) if found else None
    except ValueError:
        default = None
    return "rope_parameters" in text, default


# ---------------------------------------------------------------------------------------------
# diffusers and transformers classes, found from their source text (never imported: importing
# diffusers costs seconds and pulls torch)

_QUOTED_NAME = r"""["']([A-Za-z_][A-Za-z0-9_]*)["']"""  # compiled on use (re's cache)
_STRUCTURE_ENTRY = r"""_import_structure\[["']([\w.]+)["']\]\s*(?:=|\.extend\(|\.append\(|\+=)\s*(\[[^\]]*\]|["'][^"']*["'])"""


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


@cache
def diffusers_version() -> str | None:
    """The installed diffusers' version (from its __init__.py text), or None when not installed."""
    root = _package_dir("diffusers")
    text = _read(os.path.join(root, "__init__.py")) if root else None
    if text is None:
        return None
    found = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    return found.group(1) if found else "unknown"


@cache
def _structure(init_py: str) -> dict[str, frozenset[str]]:
    """A lazy package's `_import_structure`: submodule -> the names it exports (every literal
    list assigned, extended or appended to an entry; dummy-object modules left out)."""
    text = _read(init_py)
    out: dict[str, set[str]] = {}
    if text is None:
        return {}
    for sub, literal in re.findall(_STRUCTURE_ENTRY, text):
        if "dummy" in sub:
            continue
        out.setdefault(sub, set()).update(re.findall(_QUOTED_NAME, literal))
    start = text.find("_import_structure = {")
    if start >= 0:  # the initial dict literal: "submodule": ["Name", ...]
        end = text.find("\n}", start)
        body = text[start:end]
        for sub, literal in re.findall(r"""["']([\w.]+)["']\s*:\s*(\[[^\]]*\])""", body):
            out.setdefault(sub, set()).update(re.findall(_QUOTED_NAME, literal))
    return {k: frozenset(v) for k, v in out.items()}


@cache
def diffusers_names() -> frozenset[str] | None:
    """Every name the installed diffusers exports at its top level (what `getattr(diffusers,
    name)` finds), or None when diffusers is not installed."""
    root = _package_dir("diffusers")
    if root is None:
        return None
    names: set[str] = set()
    for package in ("", "models", "pipelines", "schedulers", "guiders", "modular_pipelines"):
        structure = _structure(os.path.join(root, package, "__init__.py"))
        for exported in structure.values():
            names |= exported
    return frozenset(names)


def diffusers_submodule_names(library: str) -> frozenset[str] | None:
    """The names a diffusers pipelines submodule exports (model_index.json names a component's
    library as e.g. "stable_diffusion" for StableDiffusionSafetyChecker); None when there is none."""
    root = _package_dir("diffusers")
    if root is None or not re.fullmatch(r"\w+", library):
        return None
    init_py = os.path.join(root, "pipelines", library, "__init__.py")
    if not os.path.isfile(init_py):
        return None
    return frozenset(n for names in _structure(init_py).values() for n in names)


def _defining_file(root: str, package: str, name: str) -> str | None:
    """The .py file of `package` (a folder under root) whose _import_structure entry exports
    `name`, following nested lazy packages (pipelines -> stable_diffusion_3 -> pipeline_...)."""
    folder = os.path.join(root, package)
    for sub, names in _structure(os.path.join(folder, "__init__.py")).items():
        if name not in names:
            continue
        path = os.path.join(folder, *sub.split("."))
        if os.path.isfile(path + ".py"):
            return path + ".py"
        if os.path.isfile(os.path.join(path, "__init__.py")):
            found = _defining_file(folder, sub.replace(".", os.sep), name)
            if found:
                return found
    return None


def _class_init(path: str, class_name: str):  # -> ast.arguments | None
    """The parsed parameter list of `class_name.__init__` in the source file `path` (only that
    signature is parsed: a whole model file costs tens of milliseconds)."""
    text = _read(path)
    if text is None:
        return None
    start = re.search(rf"^class {class_name}\(", text, re.MULTILINE)
    if start is None:
        return None
    line_end = text.find("\n", start.end()) + 1 or len(text)
    following = re.compile(r"^[^\s)]", re.MULTILINE).search(text, line_end)
    body = text[start.start() : following.start() if following else len(text)]
    init = re.search(
        r"^\s+def __init__\((.*?)\)\s*(?:->[^:]*)?:\s*$", body, re.MULTILINE | re.DOTALL
    )
    if init is None:
        return None
    import ast

    try:
        tree = ast.parse(f"def f({init.group(1)}): pass")
    except SyntaxError:
        return None
    return tree.body[0].args, body  # type: ignore[attr-defined]


def _parameters(args) -> dict[str, tuple[object, object]]:  # name -> (annotation, default)
    positional = list(args.args)
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = {a.arg: (a.annotation, d) for a, d in zip(positional, defaults, strict=True)}
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out[a.arg] = (a.annotation, d)
    out.pop("self", None)
    return out


@cache
def pipeline_signature(class_name: str) -> tuple[dict[str, bool], tuple[str, ...]] | None:
    """(__init__ parameter -> has a default, _optional_components) of a diffusers pipeline class,
    read from its source; None when it cannot be found or read. DiffusionPipeline.from_pretrained
    expects every parameter without a default and every optional component
    (_get_signature_keys, diffusers 0.42)."""
    root = _package_dir("diffusers")
    if root is None or not re.fullmatch(r"\w+", class_name):
        return None
    path = _defining_file(root, "pipelines", class_name)
    parsed = _class_init(path, class_name) if path else None
    if parsed is None:
        return None
    args, body = parsed
    optional: tuple[str, ...] = ()
    found = re.search(r"^\s+_optional_components\s*=\s*(\[[^\]]*\])", body, re.MULTILINE)
    if found:
        optional = tuple(re.findall(_QUOTED_NAME, found.group(1)))
    params = {name: default is not None for name, (_, default) in _parameters(args).items()}
    return params, optional


# JSON kinds a Python annotation accepts: numbers are one kind (diffusers annotates flags as
# float and counts as int loosely), lists stand for tuples and sequences
_KINDS = {
    "int": {"number"},
    "float": {"number"},
    "bool": {"number"},
    "str": {"string"},
    "tuple": {"list"},
    "list": {"list"},
    "List": {"list"},
    "Tuple": {"list"},
    "Sequence": {"list"},
    "dict": {"object"},
    "Dict": {"object"},
    "None": {"null"},
}


def _accepted(node) -> frozenset[str] | None:  # ast node -> JSON kinds, None: not understood
    import ast

    if isinstance(node, ast.Constant) and node.value is None:
        return frozenset({"null"})
    if isinstance(node, ast.Name):
        kinds = _KINDS.get(node.id)
        return frozenset(kinds) if kinds else None
    if isinstance(node, ast.Attribute):  # typing.Tuple, np.ndarray...
        kinds = _KINDS.get(node.attr)
        return frozenset(kinds) if kinds else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _accepted(node.left), _accepted(node.right)
        return left | right if left is not None and right is not None else None
    if isinstance(node, ast.Subscript):
        outer = (
            node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", "")
        )
        if outer in ("Optional", "Union"):
            inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            kinds = [_accepted(n) for n in inner]
            if any(k is None for k in kinds):
                return None
            out = frozenset().union(*kinds)  # type: ignore[arg-type]
            return out | {"null"} if outer == "Optional" else out
        kinds = _KINDS.get(outer)
        return frozenset(kinds) if kinds else None
    return None


@cache
def component_types(class_name: str) -> dict[str, frozenset[str]] | None:
    """config key -> the JSON kinds (number, string, list, object, null) the `__init__` of a
    diffusers model or scheduler class accepts for it, from its annotations and defaults (a None
    default admits null); keys whose annotation is not understood are left out. None when
    diffusers is not installed or the class is not found."""
    root = _package_dir("diffusers")
    if root is None or not re.fullmatch(r"\w+", class_name):
        return None
    for package in ("models", "schedulers", "pipelines"):
        path = _defining_file(root, package, class_name)
        parsed = _class_init(path, class_name) if path else None
        if parsed is not None:
            break
    else:
        return None
    import ast

    out: dict[str, frozenset[str]] = {}
    for name, (annotation, default) in _parameters(parsed[0]).items():
        kinds = _accepted(annotation) if annotation is not None else None
        if kinds is None:
            continue
        if isinstance(default, ast.Constant) and default.value is None:
            kinds = kinds | {"null"}
        out[name] = kinds
    return out


@cache
def transformers_class_known(class_name: str) -> bool | None:
    """Whether the installed transformers defines a model class (in the `__all__` of a module of
    the model folder its name starts with: CLIPTextModel -> models/clip/); None when that cannot be
    told (transformers not installed, no folder matches the name, or a tokenizer, processor or
    image processor: transformers 5 resolves those through fallbacks of its own)."""
    if class_name.endswith(
        ("Tokenizer", "TokenizerFast", "Processor", "ProcessorFast", "Extractor")
    ):
        return None
    root = _package_dir("transformers")
    folders = transformers_model_types()
    if root is None or folders is None:
        return None
    norm = class_name.lower().replace("_", "")
    candidates = sorted(
        (f for f in folders if norm.startswith(f.replace("_", "").replace("-", ""))),
        key=len,
        reverse=True,
    )
    if not candidates:
        return None
    for folder in candidates:
        path = os.path.join(root, "models", folder)
        with os.scandir(path) as entries:
            for entry in entries:
                if not entry.name.endswith(".py") or not entry.name.startswith("modeling_"):
                    continue
                text = _read(entry.path) or ""
                block = re.search(r"^__all__\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
                if block and class_name in re.findall(_QUOTED_NAME, block.group(1)):
                    return True
    return False


# Files a tokenizer can be built from when its class is not known here (transformers 5's
# conversions: tokenizer.json as it is; a SentencePiece or tiktoken model, BPE vocab.json +
# merges.txt, or a WordPiece vocab.txt converted to it)
ANY_VOCABULARY: tuple[tuple[str, ...], ...] = (
    ("tokenizer.json",),
    ("tokenizer.model",),
    ("spiece.model",),
    ("vocab.json", "merges.txt"),
    ("vocab.txt",),
)
# transformers' own base classes (tokenization_utils_tokenizers.py: TOKENIZER_FILE,
# TIKTOKEN_VOCAB_FILE): the file itself, or a tiktoken model to convert
_BASE_TOKENIZERS = {
    "PreTrainedTokenizerFast": (("tokenizer.json",), ("tokenizer.model",)),
    "TokenizersBackend": (("tokenizer.json",), ("tokenizer.model",)),
}


@cache
def vocabulary_files(tokenizer_class: str | None) -> tuple[tuple[tuple[str, ...], ...], str]:
    """(alternatives, where from): the sets of files any one of which the tokenizer class can be
    built from: tokenizer.json, or every other file its VOCAB_FILES_NAMES names (the slow files
    transformers converts: LlamaTokenizer tokenizer.model; Qwen2Tokenizer vocab.json + merges.txt;
    BertTokenizer vocab.txt), read from the installed transformers' source (never imported).
    Without transformers, or for a class it does not have: ANY_VOCABULARY."""
    generic = (ANY_VOCABULARY, "")
    if not tokenizer_class or not re.fullmatch(r"\w+", tokenizer_class):
        return generic
    name = tokenizer_class.removesuffix("Fast")
    if name in _BASE_TOKENIZERS or tokenizer_class in _BASE_TOKENIZERS:
        return _BASE_TOKENIZERS.get(name) or _BASE_TOKENIZERS[tokenizer_class], "transformers"
    root = _package_dir("transformers")
    folders = transformers_model_types()
    if root is None or folders is None:
        return generic
    norm = name.lower().replace("_", "")
    candidates = sorted(
        (f for f in folders if norm.startswith(f.replace("_", "").replace("-", ""))),
        key=len,
        reverse=True,
    )
    for folder in candidates:
        path = os.path.join(root, "models", folder)
        with os.scandir(path) as entries:
            files = sorted(e.path for e in entries if e.name.startswith("tokenization_"))
        for file in files:
            text = _read(file) or ""
            if not re.search(rf"^class {name}\(", text, re.MULTILINE):
                continue
            found = re.search(r"^VOCAB_FILES_NAMES\s*=\s*(\{[^}]*\})", text, re.MULTILINE)
            if found is None:
                return generic
            import ast

            try:
                names = ast.literal_eval(found.group(1))
            except (ValueError, SyntaxError):
                return generic
            values = [v for v in names.values() if isinstance(v, str)]
            slow = tuple(v for v in values if v != "tokenizer.json")
            # no slow file named: transformers may still convert a SentencePiece/tiktoken model
            alternatives = (("tokenizer.json",), slow or ("tokenizer.model",))
            return alternatives, f"transformers {os.path.basename(file)}"
    return generic
