"""The one safe reader and writer of the documents and records the product writes (TODO.md,
RESULTS.md, LEARNINGS.md, JSON records, ...): nothing a user wrote is lost or cut.

    read_text(path, root=None, cap=...)       -> str | None   (None: the file does not exist)
    write_text(path, text, root=None)                          atomic replace, permissions kept
    edit_text(path, change, root=None)        -> bool         read-modify-write under a lock

Reading never opens a FIFO, a device or a folder (it would block or never end), refuses a file
larger than `cap`, a symlink that leads out of `root` (the project), and bytes that are not
UTF-8; it decodes without newline translation, so "\\r\\n", form feeds and U+2028 come back as
they were. Writing goes to a temporary file in the same folder, is flushed and fsynced, and is
renamed over the target (a kill at any moment leaves the old file or the new one, never a cut
one); a target that is a symlink inside `root` is written through (the link stays a link). A
read-modify-write holds an advisory lock (flock) on the folder, so concurrent writers of one
project serialise instead of overwriting each other's rows. Every refusal is a DocumentError
with one clear line, and the file is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DOCUMENT_CAP = 64 * 1024 * 1024  # a living document is KBs; months of notes are a few MB


class DocumentError(Exception):
    """A document that cannot be read or written safely; the message is one line for the user."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        self.path = os.fspath(path)
        self.why = why
        super().__init__(f"{self.path}: {why}")


def _inside(path: str, root: str) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), root]) == root


def resolve(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """The file `path` names, links followed; DocumentError when a link leads out of `root`."""
    path = os.fspath(path)
    real = os.path.realpath(path)
    if root is not None and os.path.islink(path) and not _inside(real, os.fspath(root)):
        raise DocumentError(path, f"is a symbolic link to {real}, outside the project: refused")
    return real


def read_text(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    cap: int = DOCUMENT_CAP,
) -> str | None:
    """The text of a document, exactly as stored; None when it does not exist."""
    path = os.fspath(path)
    real = resolve(path, root)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DocumentError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DocumentError(path, "is not a regular file (a folder, FIFO or device): not read")
    if st.st_size > cap:
        raise DocumentError(path, f"is {st.st_size:,} bytes, over the {cap:,}-byte limit")
    try:
        # O_NONBLOCK: a FIFO swapped in after the stat must not block the open
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DocumentError(path, f"cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise DocumentError(path, "is not a regular file: not read")
        raw = fh.read(cap + 1)
    if len(raw) > cap:
        raise DocumentError(path, f"grew over the {cap:,}-byte limit while it was read")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            path, f"is not UTF-8 (byte {exc.start}): save it as UTF-8, then run again"
        ) from None


def write_text(
    path: str | os.PathLike[str], text: str, root: str | os.PathLike[str] | None = None
) -> None:
    """Replace a document atomically with `text` (UTF-8, no newline translation)."""
    path = os.fspath(path)
    real = resolve(path, root)
    folder = os.path.dirname(real) or "."
    mode = 0o644
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise DocumentError(path, f"cannot be written: {exc.strerror or exc}") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise DocumentError(
                path, "is not a regular file (a folder, FIFO or device): not written"
            )
        if not os.access(real, os.W_OK):
            if st.st_mode & _write_bit(st):  # the mode lets this user write: a flag forbids it
                raise DocumentError(
                    path,
                    "is protected against writing (immutable? lsattr / chattr -i on Linux, "
                    "chflags nouchg on macOS): not written",
                )
            raise DocumentError(
                path, "is read-only for this user: make it writable (chmod u+w), then run again"
            )
        mode = stat.S_IMODE(st.st_mode)
    data = text.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise DocumentError(path, f"cannot be written here: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        why = exc.strerror or str(exc)
        if exc.errno == errno.EFBIG:
            why = "the file-size limit (ulimit -f) is below its new size"
        elif exc.errno in (errno.EPERM, errno.EACCES):
            why = f"{why} (immutable or protected?)"
        raise DocumentError(path, f"not written, left as it was: {why}") from None
    _fsync_folder(folder)


def _write_bit(st: os.stat_result) -> int:
    """The mode bit that lets this process write a file (owner, group or other)."""
    if st.st_uid == os.geteuid():
        return stat.S_IWUSR
    if st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        return stat.S_IWGRP
    return stat.S_IWOTH


def _fsync_folder(folder: str) -> None:
    """Make the rename durable (best effort: not every platform syncs a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock for a read-modify-write of `path`: on its folder, because
    the file itself is replaced by a rename (a lock on it would lock the old inode)."""
    folder = os.path.dirname(os.path.realpath(os.fspath(path))) or "."
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise DocumentError(path, f"its folder cannot be opened: {exc.strerror or exc}") from None
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def edit_text(
    path: str | os.PathLike[str],
    change: Callable[[str | None], str | None],
    root: str | os.PathLike[str] | None = None,
) -> bool:
    """Read a document, apply `change` (given None when the file does not exist; returning None
    or the same text leaves it alone) and write the result, all under one lock. True if written."""
    with locked(path):
        old = read_text(path, root)
        new = change(old)
        if new is None or new == old:
            return False
        write_text(path, new, root)
        return True
