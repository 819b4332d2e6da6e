"""Looking after the cache: list what is there, remove a repo or one revision, re-hash blobs to find corrupt ones.

Works on any cache in huggingface_hub's layout (zoo.hub.cache), whichever library wrote it; the counterpart of
huggingface_hub's ``scan_cache_dir`` and ``hf cache`` commands. No network.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import RepoNotFoundError, RevisionNotFoundError
from zoo.hub import settings
from zoo.hub.cache import BlobHasher, RepoCache, hash_file, repo_folder_name

logger = logging.getLogger(__name__)


@dataclass
class CachedRevision:
    commit: str
    refs: list[str]
    files: dict[str, Path]  # repo path -> blob it links to
    size: int  # bytes of the distinct blobs this revision uses


@dataclass
class CachedRepo:
    repo_id: str
    repo_type: str
    folder: Path
    size: int  # bytes of every blob of the repo, partial downloads included
    revisions: list[CachedRevision] = field(default_factory=list)


@dataclass
class BlobCheck:
    repo_id: str
    blob: Path
    status: str  # ok | corrupt | missing | unverifiable
    detail: str = ""
    used_by: list[str] = field(default_factory=list)  # "commit[:12]/path" of the snapshot files that link to it


def _parse_folder(name: str) -> tuple[str, str] | None:
    kind, sep, rest = name.partition("--")
    if not sep or kind not in ("models", "datasets", "spaces", "kernels"):
        return None
    return kind[:-1], rest.replace("--", "/")


def _snapshot_files(snapshot: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(snapshot.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        files[path.relative_to(snapshot).as_posix()] = Path(os.path.realpath(path))
    return files


def scan_cache(cache_dir: str | os.PathLike[str] | None = None) -> list[CachedRepo]:
    """Every repo in the cache with its revisions, refs and sizes (sorted by repo id)."""
    root = settings.cache_dir(cache_dir)
    if not root.is_dir():
        return []
    repos = []
    for folder in sorted(root.iterdir()):
        parsed = _parse_folder(folder.name) if folder.is_dir() else None
        if parsed is None:
            continue
        repo_type, repo_id = parsed
        blobs = folder / "blobs"
        size = sum(p.stat().st_size for p in blobs.iterdir() if p.is_file()) if blobs.is_dir() else 0
        refs: dict[str, list[str]] = {}
        refs_dir = folder / "refs"
        if refs_dir.is_dir():
            for ref in sorted(p for p in refs_dir.rglob("*") if p.is_file()):
                commit = ref.read_text(encoding="utf-8", errors="replace").strip()
                refs.setdefault(commit, []).append(ref.relative_to(refs_dir).as_posix())
        repo = CachedRepo(repo_id, repo_type, folder, size)
        snapshots = folder / "snapshots"
        for snapshot in sorted(snapshots.iterdir()) if snapshots.is_dir() else []:
            if not snapshot.is_dir():
                continue
            files = _snapshot_files(snapshot)
            distinct = {p for p in files.values() if p.is_file()}
            repo.revisions.append(CachedRevision(snapshot.name, refs.get(snapshot.name, []), files,
                                                 sum(p.stat().st_size for p in distinct)))
        repos.append(repo)
    return repos


def _find_repo(repo_id: str, cache_dir: str | os.PathLike[str] | None) -> RepoCache:
    cache = RepoCache(settings.cache_dir(cache_dir), repo_id)
    if not cache.folder.is_dir():
        raise RepoNotFoundError(f"'{repo_id}' is not in the cache ({cache.root}); `zoo cache ls` lists what is")
    return cache


def resolve_cached_revision(cache: RepoCache, revision: str) -> str:
    """A cached commit from a ref name, a full sha or an unambiguous sha prefix (as `zoo cache ls` prints)."""
    commit = cache.read_ref(revision)
    if commit is not None and (cache.snapshots / commit).is_dir():
        return commit
    snapshots = sorted(p.name for p in cache.snapshots.iterdir()) if cache.snapshots.is_dir() else []
    matches = [s for s in snapshots if len(revision) >= 4 and s.startswith(revision)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(s[:12] for s in snapshots) or "none"
    raise RevisionNotFoundError(f"'{cache.repo_id}' has no cached revision '{revision}' in {cache.root} "
                                f"(cached commits: {shown})")


def delete_from_cache(repo_id: str, revision: str | None = None,
                      cache_dir: str | os.PathLike[str] | None = None) -> int:
    """Remove a repo, or one revision of it (with the blobs no other revision uses); returns the bytes freed."""
    cache = _find_repo(repo_id, cache_dir)
    if revision is None:
        freed = sum(p.stat().st_size for p in cache.blobs.iterdir() if p.is_file()) if cache.blobs.is_dir() else 0
        shutil.rmtree(cache.folder)
        shutil.rmtree(cache.root / ".locks" / repo_folder_name(repo_id), ignore_errors=True)
        return freed
    commit = resolve_cached_revision(cache, revision)
    shutil.rmtree(cache.snapshots / commit)
    shutil.rmtree(cache.folder / ".no_exist" / commit, ignore_errors=True)
    (cache.folder / "trees" / f"{commit}.json").unlink(missing_ok=True)
    refs_dir = cache.folder / "refs"
    if refs_dir.is_dir():
        for ref in [p for p in refs_dir.rglob("*") if p.is_file()]:
            if ref.read_text(encoding="utf-8", errors="replace").strip() == commit:
                ref.unlink()
    still_used = {p for snap in cache.snapshots.iterdir() if snap.is_dir() for p in _snapshot_files(snap).values()}
    freed = 0
    for blob in list(cache.blobs.iterdir()) if cache.blobs.is_dir() else []:
        if blob.is_file() and Path(os.path.realpath(blob)) not in still_used and not blob.name.endswith(".incomplete"):
            freed += blob.stat().st_size
            blob.unlink()
    if not any(cache.snapshots.iterdir()):
        shutil.rmtree(cache.folder)
    return freed


def verify_cache(cache_dir: str | os.PathLike[str] | None = None,
                 on_check: Callable[[BlobCheck], None] | None = None) -> list[BlobCheck]:
    """Re-hash every blob against its name (sha256 for LFS blobs, git blob sha1 for the others).

    Also reports snapshot links whose blob is gone. Blobs named by another kind of ETag are 'unverifiable'.
    """
    checks = []
    for repo in scan_cache(cache_dir):
        users: dict[Path, list[str]] = {}
        for rev in repo.revisions:
            for name, blob in rev.files.items():
                users.setdefault(blob, []).append(f"{rev.commit[:12]}/{name}")
        for blob, used_by in sorted(users.items()):
            if not blob.exists():
                checks.append(BlobCheck(repo.repo_id, blob, "missing", "the snapshot links to a blob that is gone",
                                        used_by))
                if on_check is not None:
                    on_check(checks[-1])
        blobs = repo.folder / "blobs"
        for blob in sorted(blobs.iterdir()) if blobs.is_dir() else []:
            if not blob.is_file() or blob.name.endswith(".incomplete"):
                continue
            size = blob.stat().st_size
            hasher = BlobHasher.for_etag(blob.name, size)
            if hasher.kind is None:
                check = BlobCheck(repo.repo_id, blob, "unverifiable", "the name is not a sha256 or git sha1")
            else:
                hash_file(blob, hasher)
                ok = hasher.matches()
                check = BlobCheck(repo.repo_id, blob, "ok" if ok else "corrupt",
                                  "" if ok else f"{hasher.kind} is {hasher.hexdigest()}", users.get(Path(os.path.realpath(blob)), []))
            checks.append(check)
            if on_check is not None:
                on_check(check)
    return checks
