"""Hub ids and the local Hugging Face cache: where a `org/name[@revision]` lives on disk, and
the download of its metadata files only (never weights) for `--fetch-metadata`.

pathlib and huggingface_hub are imported only here, only for hub ids: a local path never pays.
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

HUB_ID = r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+(@[\w.\-/]+)?$"  # compiled on use: local paths never
# what --fetch-metadata downloads: everything but weights
METADATA_PATTERNS = [
    "*.json",
    "*.jinja",
    "*.txt",
    "*.md",
    "*.model",
    "*.tiktoken",
    "*/*.json",
    "*/*.txt",
    "*/*.model",
]


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps its cache: HF_HUB_CACHE, else HF_HOME/hub, else the default."""
    from pathlib import Path  # hub ids only: a local path never imports pathlib

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def split_hub_id(text: str) -> tuple[str, str | None] | None:
    """("org/name", revision or None) when text looks like a hub id, else None."""
    if not re.match(HUB_ID, text):
        return None
    repo, _, revision = text.partition("@")
    return repo, revision or None


def resolve_hub_cache(repo_id: str, revision: str | None = None) -> Path | None:
    """The snapshot folder of repo_id in the local cache (refs/<revision or main>), or None."""
    repo_dir = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return None
    if revision is None:
        return cache_repo_snapshot(repo_dir)
    if re.fullmatch(r"[0-9a-f]{40}", revision) and (snapshots / revision).is_dir():
        return snapshots / revision
    return ref_snapshot(repo_dir, revision)


def ref_snapshot(repo_dir: Path, ref: str) -> Path | None:
    """The snapshot that refs/<ref> of a `models--org--name` cache folder names, or None."""
    if not _plain_name(ref, slashes=True):
        return None
    ref_file = repo_dir / "refs" / ref
    if ref_file.is_file():
        commit = ref_file.read_text(encoding="utf-8", errors="replace")[:256].strip()
        snapshot = repo_dir / "snapshots" / commit
        if _plain_name(commit) and snapshot.is_dir():
            return snapshot
    return None


def _plain_name(name: str, *, slashes: bool = False) -> bool:
    """A name that stays inside its folder: not empty, no "." or ".." part, no backslash, and
    no slash unless `slashes` (a branch ref such as "pr/1" has them)."""
    parts = name.split("/") if slashes else [name]
    return (
        bool(name)
        and "\\" not in name
        and all(p not in ("", ".", "..") for p in parts)
        and (slashes or "/" not in name)
    )


def cache_repo_snapshot(repo_dir: Path) -> Path | None:
    """The refs/main snapshot (else the newest) of a `models--org--name` cache folder."""
    snapshot = ref_snapshot(repo_dir, "main")
    if snapshot is not None:
        return snapshot
    found = [p for p in (repo_dir / "snapshots").iterdir() if p.is_dir()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def download_metadata(repo_id: str, revision: str | None = None) -> Path:
    """Download configs, tokenizer files and index files of a hub repo (never weights) with
    huggingface_hub and return the snapshot folder. Honours HF_HUB_OFFLINE (then the cached
    snapshot is returned, or LocalEntryNotFoundError raised)."""
    from pathlib import Path

    from huggingface_hub import snapshot_download

    path = snapshot_download(
        repo_id, revision=revision, allow_patterns=METADATA_PATTERNS, cache_dir=hub_cache_dir()
    )
    return Path(path)
