"""Issue 15: safe under hostile input, faults and concurrency. Real processes, real loaders, real
kills and file-size limits; inputs generated small (each test well under a few seconds) and
scaled so that the old code fails them.

- the trust boundary: no code a model folder names runs on --load/--infer, `genai diagnostics`
  or `genai bench` without --trust-remote-code (a marker file that must never appear);
- concurrent writers of RESULTS.md and TODO.md keep every row and item; kills and `ulimit -f`
  never cut a document; `genai tiny` never leaves a half-built model nor deletes a project.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from templates_helpers import run_genai
from test_review import make_project

from genai_common.model import custom_code
from genai_common.project import diagnostics, session, todo
from genai_common.runtime import loading

MARKER_CODE = (
    "import pathlib\n"
    "pathlib.Path({marker!r}).write_text('model code ran')\n"
    "raise SystemExit('custom code executed')\n"
)


def _plant(folder: Path, marker: Path, name: str = "custom_model.py") -> Path:
    code = folder / name
    code.write_text(MARKER_CODE.format(marker=str(marker)))
    return code


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.fixture
def vlm_with_model_file(tmp_path: Path, tiny_vlm: Path) -> tuple[Path, Path]:
    model = tmp_path / "vlm"
    shutil.copytree(tiny_vlm, model)
    marker = tmp_path / "MARKER"
    _plant(model, marker)
    _edit_json(model / "config.json", model_file="custom_model.py")
    return model, marker


# -- 1. the trust boundary ---------------------------------------------------------------------


def test_doctor_load_refuses_model_file_and_never_runs_it(vlm_with_model_file) -> None:
    model, marker = vlm_with_model_file
    for flag in ("--load", "--infer"):
        done = run_genai(model.parent, "doctor", str(model), flag, "--json")
        report = json.loads(done.stdout)
        sec = [f for f in report["findings"] if f["code"] == "SEC001"]
        assert done.returncode == 1 and sec and sec[0]["severity"] == "error", done.stdout
        assert "custom_model.py" in sec[0]["message"] and "--trust-remote-code" in sec[0]["hint"]
        assert not any(f["code"] == "LOAD030" for f in report["findings"])
        assert not marker.exists()
    static = [f for f in report["findings"] if f["code"] == "CMP030"]
    assert static and "refuse" in static[0]["message"] and "never executes" not in static[0]["hint"]


def test_the_flag_is_what_lets_it_run(vlm_with_model_file) -> None:
    """Positive control: the same folder with --trust-remote-code runs the code (so the refusal
    above is what kept the marker away, not a folder that would not load anyway)."""
    model, marker = vlm_with_model_file
    run_genai(model.parent, "doctor", str(model), "--load", "--trust-remote-code", "--json")
    assert marker.exists()


def test_absolute_model_file_outside_the_folder(tmp_path: Path, tiny_vlm: Path) -> None:
    model = tmp_path / "vlm"
    shutil.copytree(tiny_vlm, model)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    marker = tmp_path / "MARKER"
    code = _plant(outside, marker)
    _edit_json(model / "config.json", model_file=str(code))
    with pytest.raises(loading.CustomCodeRefused, match=r"elsewhere/custom_model\.py"):
        loading.load_vlm(model)
    assert not marker.exists()


@pytest.mark.parametrize(
    "config", ["config.json", "tokenizer_config.json", "processor_config.json"]
)
def test_auto_map_in_any_config_is_refused(tmp_path: Path, tiny_llm: Path, config: str) -> None:
    model = tmp_path / "llm"
    shutil.copytree(tiny_llm, model)
    marker = tmp_path / "MARKER"
    _plant(model, marker, "custom_tok.py")
    _edit_json(model / config, auto_map={"AutoTokenizer": ["custom_tok.Tok", None]})
    done = run_genai(tmp_path, "doctor", str(model), "--load", "--json")
    codes = {f["code"]: f for f in json.loads(done.stdout)["findings"]}
    assert "SEC001" in codes and config in codes["SEC001"]["message"]
    assert "custom_tok.py" in codes["SEC001"]["message"]
    with pytest.raises(loading.CustomCodeRefused):
        loading.load_llm(model)
    assert not marker.exists()


def test_diffusers_custom_component_and_ml_are_refused(tmp_path: Path) -> None:
    model = tmp_path / "pipe"
    (model / "unet").mkdir(parents=True)
    marker = tmp_path / "MARKER"
    _plant(model / "unet", marker, "my_unet.py")
    _edit_json(
        model / "model_index.json",
        _class_name="X",
        unet=["my_unet", "MyUNet"],
        text_encoder=["transformers", "CLIPTextModel"],
    )
    (model / "text_encoder").mkdir()
    _edit_json(model / "text_encoder" / "config.json", auto_map={"AutoModel": "enc.Enc"})
    found = {(c.file, c.target) for c in custom_code.scan(model)}
    assert ("model_index.json", "unet/my_unet.py") in found
    assert ("text_encoder/config.json", "text_encoder/enc.py") in found
    with pytest.raises(loading.CustomCodeRefused):
        loading.load_diffusion(model)
    with pytest.raises(loading.CustomCodeRefused):
        loading.load_ml(model)
    assert not marker.exists()


def test_diagnostics_and_bench_refuse_before_any_loader(vlm_with_model_file) -> None:
    model, marker = vlm_with_model_file
    project = model.parent / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "p"\n\n[tool.genai]\nkind = "vlm"\nmodel = "{model}"\n'
    )
    done = run_genai(project, "diagnostics", "--steps", "load,inference")
    assert done.returncode == 1 and "SEC001" in done.stdout, done.stdout + done.stderr
    done = run_genai(project, "bench", str(model), "--no-record")
    assert done.returncode == 2 and "SEC001" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


def test_fifo_in_a_model_folder_is_never_handed_to_a_loader(tmp_path: Path, tiny_ml: Path) -> None:
    model = tmp_path / "ml"
    shutil.copytree(tiny_ml, model)
    os.mkfifo(model / "extra.safetensors")
    done = subprocess.run(
        [sys.executable, "-m", "genai_common", "doctor", str(model), "--load", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert "SEC002" in codes and "LOAD003" not in codes


# -- 2./3. one safe writer: concurrency, kills, limits ----------------------------------------

USER_RESULTS = "# Results\r\n\r\nmy notes\u2028kept\x0cpage\r\n\r\n## Mine\r\n\r\n- keep me\r\n"


def _record(root: str, i: int) -> None:
    diagnostics.record_results(Path(root), [f"row-{i}", "m", "ok", "1", "1", "x", "v", "f", "m"])


def test_eight_concurrent_records_keep_all_rows_and_user_sections(tmp_path: Path) -> None:
    (tmp_path / "reference").mkdir()
    results = tmp_path / "reference" / "RESULTS.md"
    results.write_bytes(USER_RESULTS.encode())
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record, args=(str(tmp_path), i)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    text = results.read_bytes().decode()
    assert text.startswith(USER_RESULTS)  # every user byte, CRLF and U+2028 included
    assert sorted(line.split(" | ")[0] for line in text.split("\r\n") if "row-" in line) == [
        f"| row-{i}" for i in range(8)
    ]


def test_two_concurrent_session_ends_keep_both_items(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "genai_common", "session", "end", "--completed", f"item-{i}"],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(4)
    ]
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    text = (project / "TODO.md").read_text()
    assert all(f"item-{i}" in text for i in range(4)), text


def _kill_loop(cmd: list[str], cwd: Path, doc: Path, original: bytes, rounds: int) -> None:
    for r in range(rounds):
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.1 + 0.15 * r)  # from start-up to past the write (~0.8 s on 3 MB)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = doc.read_bytes()
        assert now[: len(original)] == original, f"round {r}: {len(now)} bytes"
        doc.write_bytes(original)


def test_sigkill_mid_session_end_never_cuts_todo(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    doc = project / "TODO.md"
    original = doc.read_bytes() + b"- [ ] old note\n" * 200_000  # 3 MB
    doc.write_bytes(original)
    cmd = [sys.executable, "-m", "genai_common", "session", "end", "--completed", "x"]
    _kill_loop(cmd, project, doc, original, rounds=8)


def test_file_size_limit_leaves_documents_whole(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    doc = project / "TODO.md"
    original = doc.read_bytes() + b"- [ ] old note\n" * 30_000  # 450 KB, over a 200 KB limit
    doc.write_bytes(original)
    done = subprocess.run(
        f"ulimit -f 200; exec {sys.executable} -m genai_common session end --completed x",
        shell=True,
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "ulimit" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert doc.read_bytes() == original


def test_record_keeps_line_endings_and_unicode_breaks() -> None:
    text = diagnostics.insert_results_row(USER_RESULTS, ["r"])
    assert text.startswith(USER_RESULTS) and text.endswith("| r |\r\n")
    assert diagnostics.insert_results_row(text, ["s"]).count("\u2028") == 1


def test_documents_linked_out_of_the_project_are_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    outside = tmp_path / "outside.md"
    outside.write_text("not yours\n")
    (project / "TODO.md").unlink()
    (project / "TODO.md").symlink_to(outside)
    with pytest.raises(session.SessionError, match="outside the project"):
        session.end(project, completed=["x"])
    (project / "reference").mkdir(exist_ok=True)
    (project / "reference" / "RESULTS.md").unlink(missing_ok=True)
    (project / "reference" / "RESULTS.md").symlink_to(outside)
    done = run_genai(project, "diagnostics", "--steps", "config", "--record")
    assert "outside the project" in done.stderr and "Traceback" not in done.stderr
    assert outside.read_text() == "not yours\n"


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_fifo_todo_never_hangs(tmp_path: Path, special: str) -> None:
    project = make_project(tmp_path / "proj")
    (project / "TODO.md").unlink()
    if special == "fifo":
        os.mkfifo(project / "TODO.md")
    else:  # read until memory runs out, before
        (project / "TODO.md").symlink_to(special)
    for args in (
        ["session", "start", "--no-doctor", "--json"],
        ["session", "end", "--completed", "x"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "genai_common", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "Traceback" not in done.stderr


def test_newlines_in_items_stay_inside_the_item() -> None:
    text = todo.append_block(
        "# TODO\n", "2026-01-01 10:00", {"completed": ["a\n## Session End: x\n# H\u2028b"]}, None
    )
    assert len(todo.blocks(text)) == 1
    assert "# H" in text and "\n# H" not in text and "\u2028" not in text


def test_session_end_blocks_are_linear() -> None:
    """32k blocks: the old parser compared every heading with every block (minutes)."""
    text = "".join(f"## Session End: 2026-01-01 {i}\n\n- [x] a\n\n" for i in range(32_000))
    found = todo.blocks(text)
    assert len(found) == 32_000 and found[-1].end == len(text.splitlines())


# -- the tiny model: never half-built, --force never destroys ----------------------------------


def test_tiny_build_is_marked_and_a_half_built_folder_is_not_built(tmp_path: Path) -> None:
    from genai_common.testing import tiny

    dest = tmp_path / "m"
    tiny.build("ml", dest)
    assert (dest / tiny.MARKER).is_file() and tiny._is_built(dest)
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text("{}")  # what a killed old build left
    assert not tiny._is_built(half)


def test_tiny_force_never_deletes_a_project(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    before = sorted(p.name for p in project.iterdir())
    for dest in (".", str(project)):
        done = run_genai(project, "tiny", "ml", dest, "--force")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    done = run_genai(tmp_path, "tiny", "ml", str(other), "--force")
    assert done.returncode == 2 and (other / "mine.txt").exists()
    assert sorted(p.name for p in project.iterdir()) == before


def test_killed_tiny_build_leaves_nothing_taken_for_built(tmp_path: Path) -> None:
    env = {**os.environ, "GENAI_TINY_CACHE": "off"}
    dest = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_common", "tiny", "diffusion", str(dest)], env=env
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from genai_common.testing import tiny

    assert proc.returncode == 0 or not tiny._is_built(dest)


# -- 4./5./6./8. hostile inputs: linear, bounded, a finding (never a traceback) ----------------

LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 1000,
}
N = 20_000  # the old code took seconds to minutes at this size (RESULTS.md, issue 15)


def _header(path: Path, header: dict | bytes) -> None:
    import struct

    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 16)


def _folder(tmp_path: Path, **files: str | bytes) -> Path:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(LLAMA))
    _header(
        model / "model.safetensors", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    )
    for name, data in files.items():
        target = model / name.replace("__", ".")
        target.write_bytes(data) if isinstance(data, bytes) else target.write_text(data)
    return model


def _doctor(model: Path, *extra: str) -> tuple[dict, str]:
    done = run_genai(model.parent, "doctor", str(model), "--json")
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    plain = run_genai(model.parent, "doctor", str(model), *extra)
    assert "Traceback" not in plain.stderr and len(plain.stdout) < 100_000
    return json.loads(done.stdout), plain.stdout


def _codes(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in report["findings"]:
        out.setdefault(f["code"], []).append(f)
    return out


def test_many_duplicate_keys_named_few_and_counted(tmp_path: Path) -> None:
    body = ",".join(f'"k{i}": 1, "k{i}": 2' for i in range(N))
    model = _folder(tmp_path, config__json="{" + body + ', "model_type": "llama"}')
    report, _ = _doctor(model)
    [dup] = _codes(report)["JSON005"]
    assert "'k0'" in dup["message"] and f"{N - 5:,} more" in dup["message"]
    assert len(dup["message"]) < 500


def test_many_special_tokens_and_escaping_index_entries(tmp_path: Path) -> None:
    toks = [f"<t{i}>" for i in range(N)]
    weight_map = {f"w{i}": f"../../x{i}.safetensors" for i in range(N)}
    model = _folder(
        tmp_path,
        tokenizer_config__json=json.dumps({"additional_special_tokens": toks}),
        special_tokens_map__json=json.dumps({"additional_special_tokens": toks}),
        model__safetensors__index__json=json.dumps({"metadata": {}, "weight_map": weight_map}),
    )
    report, _ = _doctor(model)
    [escape] = _codes(report)["IDX003"]
    assert f"{N - 3:,} more" in escape["message"] and len(escape["message"]) < 500


def test_tensor_with_huge_rank_is_refused_early(tmp_path: Path) -> None:
    model = _folder(tmp_path)
    _header(
        model / "model.safetensors",
        {"a": {"dtype": "F32", "shape": [2] * 200_000, "data_offsets": [0, 16]}},
    )
    report, _ = _doctor(model)
    [dims] = _codes(report)["HDR012"]
    assert "200,000 dimensions" in dims["message"] and len(dims["message"]) < 400


@pytest.mark.parametrize(
    "name",
    [
        "config.json",
        "generation_config.json",
        "tokenizer_config.json",
        "model.safetensors.index.json",
        "model.safetensors",
    ],
)
def test_integers_over_4300_digits_are_findings(tmp_path: Path, name: str) -> None:
    big = "9" * 5000
    model = _folder(tmp_path)
    if name == "model.safetensors":
        raw = '{"a": {"dtype": "F32", "shape": [' + big + '], "data_offsets": [0, 16]}}'
        _header(model / name, raw.encode())
    elif name == "model.safetensors.index.json":
        (model / name).write_text(
            '{"metadata": {"total_size": ' + big + '}, "weight_map": {"a": "model.safetensors"}}'
        )
    else:
        (model / name).write_text('{"model_type": "llama", "hidden_size": ' + big + "}")
    report, _ = _doctor(model)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert any("4300 digits" in f["message"] for f in errors), report["findings"]
    assert not any(f["code"] == "DOC001" for f in report["findings"])


def test_many_bad_entries_give_a_bounded_report(tmp_path: Path) -> None:
    model = _folder(tmp_path)
    header = {f"t{i}": {"dtype": "XX", "shape": [1], "data_offsets": [0, 1]} for i in range(N)}
    _header(model / "model.safetensors", header)
    report, _ = _doctor(model)
    per_code = _codes(report)
    assert all(len(found) <= 51 for found in per_code.values())
    assert any("more HDR011 findings" in f["message"] for f in per_code["HDR011"])


def test_control_characters_never_reach_the_terminal(tmp_path: Path) -> None:
    evil = "\x1b]0;pwned\x07\x1b[2J" + "x" * 300_000
    model = _folder(tmp_path, config__json=json.dumps({**LLAMA, "model_type": evil}))
    (model / "a\nerror   FAKE001  forged.json").write_text("{}")
    for extra in ((), ("--markdown",)):
        _, out = _doctor(model, *extra)
        assert "\x1b" not in out and "\x07" not in out and len(out) < 20_000
        assert not any(line.startswith("error   FAKE001") for line in out.splitlines())


# -- 9. the loader child dies with its parent ---------------------------------------------------

PARENT = """
import sys
from genai_common.runtime.isolate import run_isolated
print("started", flush=True)
run_isolated("time:sleep", 120, timeout=300)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_loader_child_dies_with_its_parent(tmp_path: Path, sig: signal.Signals) -> None:
    import psutil

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert parent.stdout.readline().strip() == b"started"
    deadline = time.time() + 30
    children: list = []
    while not children and time.time() < deadline:
        children = psutil.Process(parent.pid).children(recursive=True)
        time.sleep(0.05)
    assert children and list(tmp_path.glob("genai-isolated-*"))
    time.sleep(0.5)  # the child is past its start-up (its parent watch is running)
    parent.send_signal(sig)
    parent.wait(30)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"{sig.name}: loader child left running"
    deadline = time.time() + 5
    while list(tmp_path.glob("genai-isolated-*")) and time.time() < deadline:
        time.sleep(0.05)
    assert not list(tmp_path.glob("genai-isolated-*")), "temp folder left behind"
    assert b"Traceback" not in parent.stderr.read() or sig != signal.SIGTERM


# -- 11./12. one clear line; smaller ones ---------------------------------------------------------


def test_hub_ref_that_is_a_path_is_not_followed(tmp_path: Path) -> None:
    from genai_common.model.hub import ref_snapshot

    repo = tmp_path / "models--org--name"
    (repo / "snapshots").mkdir(parents=True)
    (repo / "refs").mkdir()
    for ref in ("..", ".", "../..", "a/b"):
        (repo / "refs" / "main").write_text(ref)
        assert ref_snapshot(repo, "main") is None


def test_listing_cut_is_said_and_never_a_false_missing_config(tmp_path: Path) -> None:
    from genai_common.model import model_dir

    model = _folder(tmp_path)
    for i in range(model_dir.MAX_FILES):
        (model / f"a{i:05d}.txt").touch()  # sorted before config.json: the old cut dropped it
    report, _ = _doctor(model)
    codes = _codes(report)
    assert "FILE022" in codes and "FILE001" not in codes


def test_malformed_pyproject_and_index_lock_are_one_line(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.genai\nkind = 'llm'\n")
    done = run_genai(project, "diagnostics", "--steps", "config")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    make_project(project, drop=())
    (project / ".copier-answers.yml").write_text("_src_path: x\n")
    (project / ".git" / "index.lock").touch()
    done = run_genai(project, "update")
    assert done.returncode == 2 and "index.lock" in done.stderr and "Traceback" not in done.stderr


def test_diffusion_component_with_only_pickle_weights(tmp_path: Path) -> None:
    model = tmp_path / "pipe"
    for comp, cls in (("unet", "UNet2DConditionModel"), ("vae", "AutoencoderKL")):
        (model / comp).mkdir(parents=True)
        (model / comp / "config.json").write_text(json.dumps({"_class_name": cls}))
    _header(
        model / "vae" / "diffusion_pytorch_model.safetensors",
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
    )
    (model / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04not really" * 10)
    (model / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionPipeline",
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
            }
        )
    )
    report, _ = _doctor(model)
    found = [f for f in report["findings"] if f["code"] == "FILE013"]
    assert found and "unet" in found[0]["message"] and found[0]["severity"] == "error"


def test_unwritable_documents_are_one_line_before_any_work(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    (project / "reference").mkdir(exist_ok=True)
    results = project / "reference" / "RESULTS.md"
    results.write_bytes(b"# R\n\xff\xfe latin-1 \xe9\n")
    done = run_genai(project, "diagnostics", "--steps", "config", "--record")
    assert done.returncode == 2 and "not UTF-8" in done.stderr and "Traceback" not in done.stderr
    assert "Diagnostics of" not in done.stdout  # refused before any step ran
    assert results.read_bytes() == b"# R\n\xff\xfe latin-1 \xe9\n"
    todo_md = project / "TODO.md"
    before = todo_md.read_bytes()
    todo_md.chmod(0o444)
    try:
        done = run_genai(project, "session", "end", "--completed", "x")
    finally:
        todo_md.chmod(0o644)
    if os.geteuid() != 0:  # root writes through a read-only mode
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert todo_md.read_bytes() == before
    assert "Traceback" not in done.stderr


def test_tiny_under_a_file_size_limit_is_one_line(tmp_path: Path) -> None:
    dest = tmp_path / "m"
    done = subprocess.run(
        f"ulimit -f 10; exec {sys.executable} -m genai_common tiny ml {dest}",
        shell=True,
        capture_output=True,
        text=True,
        env={**os.environ, "GENAI_TINY_CACHE": "off"},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    from genai_common.testing import tiny

    assert len(done.stderr.strip().splitlines()) == 1 and not tiny._is_built(dest)


def test_gguf_with_many_metadata_entries_is_bounded(tmp_path: Path) -> None:
    from malformed_corpus import GGUF_STRING, write_gguf

    from genai_common.formats.gguf import MAX_METADATA_KEYS

    kvs = [("general.architecture", GGUF_STRING, "llama")]
    kvs += [(f"x.k{i}", GGUF_STRING, "v") for i in range(MAX_METADATA_KEYS + 500)]
    path = tmp_path / "m.gguf"
    write_gguf(path, kvs)
    report, _ = _doctor(path)
    [cut] = _codes(report)["SEC011"]
    assert "501 skipped" in cut["message"]  # 1 + 4,096 + 500 written, 4,096 kept


def test_a_cached_hub_id_is_judged_by_its_snapshot(
    tmp_path: Path, tiny_llm: Path, monkeypatch
) -> None:
    snapshot = tmp_path / "hub" / "models--org--evil" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_llm, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    marker = tmp_path / "MARKER"
    _plant(snapshot, marker)
    _edit_json(snapshot / "config.json", model_file="custom_model.py")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(loading.CustomCodeRefused):
        loading.load_llm("org/evil")
    assert not marker.exists()
