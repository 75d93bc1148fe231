"""The one safe reader and writer (genai_common/runtime/files.py) under faults: kills mid-write,
file-size limits, read-only files, FIFOs, devices, links out of the project, other encodings and
concurrent writers. Nothing the user wrote is lost or cut, and every refusal is one clear line."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai_common.runtime.files import DocumentError, edit_text, read_text, write_text

USER_TEXT = "# TODO\r\n\r\nmine\u2028still mine\x0cpage two\r\n- [ ] keep me\n"


def test_round_trip_keeps_every_byte(tmp_path: Path) -> None:
    doc = tmp_path / "TODO.md"
    write_text(doc, USER_TEXT)
    assert doc.read_bytes() == USER_TEXT.encode("utf-8")
    assert read_text(doc) == USER_TEXT
    assert read_text(tmp_path / "absent.md") is None


def test_permissions_survive_a_rewrite(tmp_path: Path) -> None:
    doc = tmp_path / "RESULTS.md"
    doc.write_text("a\n")
    doc.chmod(0o640)
    write_text(doc, "b\n")
    assert doc.read_text() == "b\n" and (doc.stat().st_mode & 0o777) == 0o640


def test_fifo_and_device_are_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "TODO.md"
    os.mkfifo(fifo)
    with pytest.raises(DocumentError, match="not a regular file"):
        read_text(fifo)  # would block forever if it were opened
    with pytest.raises(DocumentError, match="not a regular file"):
        write_text(fifo, "x")
    zero = tmp_path / "RESULTS.md"
    zero.symlink_to("/dev/zero")
    with pytest.raises(DocumentError):
        read_text(zero)  # would be read until memory runs out


def test_links_out_of_the_project_are_refused_and_the_target_untouched(tmp_path: Path) -> None:
    project, outside = tmp_path / "proj", tmp_path / "outside.md"
    project.mkdir()
    outside.write_text("not yours\n")
    link = project / "TODO.md"
    link.symlink_to(outside)
    with pytest.raises(DocumentError, match="outside the project"):
        write_text(link, "row\n", root=project)
    with pytest.raises(DocumentError, match="outside the project"):
        read_text(link, root=project)
    assert outside.read_text() == "not yours\n" and link.is_symlink()


def test_a_link_inside_the_project_is_written_through(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    real = tmp_path / "docs" / "TODO.md"
    real.write_text("old\n")
    link = tmp_path / "TODO.md"
    link.symlink_to(real)
    write_text(link, "new\n", root=tmp_path)
    assert link.is_symlink() and real.read_text() == "new\n"


def test_not_utf8_is_refused_with_one_line(tmp_path: Path) -> None:
    doc = tmp_path / "RESULTS.md"
    doc.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DocumentError, match="not UTF-8") as err:
        read_text(doc)
    assert "\n" not in str(err.value)
    with pytest.raises(DocumentError, match="not UTF-8"):
        edit_text(doc, lambda t: (t or "") + "row\n")
    assert doc.read_bytes() == "caf\xe9\n".encode("latin-1")


def _as_nobody(fn, *args) -> None:
    """Run fn(*args) in a child as an unprivileged user when this is root (root writes through
    any mode bits, so a read-only refusal is what a normal user meets); an AssertionError or an
    unexpected exception in the child fails the test."""
    if os.geteuid() != 0:
        fn(*args)
        return
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, run, report through the exit status
        code = 0
        try:
            os.setgid(65534)
            os.setuid(65534)
            fn(*args)
        except BaseException:  # any failure is the test's failure
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _shared_dir(tmp_path: Path) -> Path:
    """A folder the unprivileged child can reach (tmp_path's parents are root's alone)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="genai-files-", dir="/tmp"))
    folder.chmod(0o755)
    return folder


def _refuse_read_only(doc: str) -> None:
    with pytest.raises(DocumentError, match="read-only"):
        write_text(doc, "replaced\n")
    assert Path(doc).read_text() == "mine\n"


def test_read_only_file_is_refused_and_untouched(tmp_path: Path) -> None:
    folder = _shared_dir(tmp_path)
    doc = folder / "TODO.md"
    doc.write_text("mine\n")
    if os.geteuid() == 0:
        os.chown(doc, 65534, 65534)
        os.chown(folder, 65534, 65534)
    doc.chmod(0o444)
    _as_nobody(_refuse_read_only, str(doc))
    assert doc.read_text() == "mine\n"


def _refuse_read_only_folder(doc: str) -> None:
    with pytest.raises(DocumentError, match="cannot be written here"):
        write_text(doc, "replaced\n")
    assert Path(doc).read_text() == "mine\n"


def test_read_only_folder_refuses_before_anything_changes(tmp_path: Path) -> None:
    folder = _shared_dir(tmp_path)
    doc = folder / "TODO.md"
    doc.write_text("mine\n")
    if os.geteuid() == 0:
        os.chown(doc, 65534, 65534)
        os.chown(folder, 65534, 65534)
    folder.chmod(0o555)
    _as_nobody(_refuse_read_only_folder, str(doc))
    assert doc.read_text() == "mine\n"


def test_an_immutable_file_is_refused_and_untouched(tmp_path: Path) -> None:
    doc = tmp_path / "TODO.md"
    doc.write_text("mine\n")
    made = subprocess.run(["chattr", "+i", str(doc)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not allowed here ({made.stderr.strip()}): needs root on ext4")
    try:
        with pytest.raises(DocumentError, match="immutable"):
            write_text(doc, "replaced\n")
        assert doc.read_text() == "mine\n"
        assert [p.name for p in tmp_path.iterdir()] == ["TODO.md"]
    finally:
        subprocess.run(["chattr", "-i", str(doc)], check=False)


def _child_writes_forever(path: str, payloads: list[str]) -> None:
    i = 0
    while True:
        write_text(path, payloads[i % 2])
        i += 1


def test_a_kill_mid_write_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    doc = tmp_path / "TODO.md"
    big = [("a" * 999 + "\n") * 3000, ("b" * 999 + "\n") * 3000]  # 3 MB each
    write_text(doc, big[0])
    ctx = multiprocessing.get_context("fork")
    for delay in (0.02, 0.05, 0.11, 0.17, 0.23):
        proc = ctx.Process(target=_child_writes_forever, args=(str(doc), big))
        proc.start()
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert doc.read_text() in big  # never cut, never empty


def test_a_file_size_limit_leaves_the_document_whole(tmp_path: Path) -> None:
    doc = tmp_path / "RESULTS.md"
    doc.write_text("kept\n" * 1000)  # 5 KB
    script = (
        "import resource, sys\n"
        "from genai_common.runtime.files import DocumentError, write_text\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))\n"
        "try:\n"
        f"    write_text({str(doc)!r}, 'x' * 200_000)\n"
        "except DocumentError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "file-size limit" in proc.stdout
    assert doc.read_text() == "kept\n" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]  # no temporary left behind


def _append_rows(path: str, who: int, n: int) -> None:
    for i in range(n):
        edit_text(path, lambda text, i=i: (text or "") + f"| {who} | {i} |\n")


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    doc = tmp_path / "RESULTS.md"
    write_text(doc, "# RESULTS\n\nthe user's notes\n")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_rows, args=(str(doc), w, 10)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    text = doc.read_text()
    assert text.startswith("# RESULTS\n\nthe user's notes\n")
    rows = {line for line in text.splitlines() if line.startswith("|")}
    assert rows == {f"| {w} | {i} |" for w in range(8) for i in range(10)}


def test_edit_leaves_an_unchanged_document_alone(tmp_path: Path) -> None:
    doc = tmp_path / "TODO.md"
    doc.write_text("same\n")
    before = doc.stat().st_mtime_ns
    assert edit_text(doc, lambda t: t) is False
    assert edit_text(tmp_path / "new.md", lambda t: None) is False
    assert doc.stat().st_mtime_ns == before and not (tmp_path / "new.md").exists()
    assert edit_text(tmp_path / "new.md", lambda t: "created\n") is True
