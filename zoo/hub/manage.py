"""Looking after the cache: list what is there, remove a repo or one revision, re-hash blobs to find corrupt ones,
and repair what verification found.

Works on any cache in huggingface_hub's layout (zoo.hub.cache), whichever library wrote it; the counterpart of
huggingface_hub's ``scan_cache_dir`` and ``hf cache`` commands (a cache folder that does not exist is an error, as
its ``CacheNotFound`` is). Only :func:`repair_cache` uses the network: it fetches again what is corrupt or missing.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import CacheNotFoundError, RepoNotFoundError, RevisionNotFoundError, ZooError
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
    blob: Path  # the blob; for "outside", where the snapshot entry leads
    status: str  # ok | corrupt | missing | outside (a snapshot entry that does not lead into blobs/) | unverifiable
    detail: str = ""
    used_by: list[str] = field(default_factory=list)  # "commit[:12]/path" of the snapshot files that link to it
    links: list[tuple[str, str]] = field(default_factory=list)  # (commit, path) of those files, for a repair
    repo_type: str = "model"

    @property
    def bad(self) -> bool:
        return self.status in BAD


BAD = ("corrupt", "missing", "outside")


def existing_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache root, which must exist: a mistyped ``--cache-dir`` is not an empty cache."""
    root = settings.cache_dir(cache_dir)
    if not root.is_dir():
        given = ("given as cache_dir" if cache_dir is not None
                 else next((f"from {n}" for n in ("ZOO_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
                            if os.environ.get(n)), "the default: $HF_HOME/hub"))
        what = "is not a folder" if root.exists() else "does not exist"
        fix = (f"check the path, or leave cache_dir out to use the default cache ({settings.cache_dir()})"
               if cache_dir is not None else "nothing was downloaded into it yet, or the setting names the wrong "
               "folder; pass cache_dir to look elsewhere")
        raise CacheNotFoundError(f"the cache folder {root} ({given}) {what}: {fix}")
    return root


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
    """Every repo in the cache with its revisions, refs and sizes (sorted by repo id).

    Raises CacheNotFoundError if the cache folder does not exist.
    """
    root = existing_cache_dir(cache_dir)
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
        where = f"{cache.root}" + ("" if cache.root.is_dir() else ", a folder that does not exist")
        raise RepoNotFoundError(f"'{repo_id}' is not in the cache ({where}); `zoo cache ls` lists what is")
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

    Also reports snapshot links whose blob is gone ('missing') and snapshot entries that lead anywhere but to a blob
    of their repo ('outside': a link out of the cache, or to a partial download). Blobs named by another kind of
    ETag are 'unverifiable'.
    """
    checks = []
    for repo in scan_cache(cache_dir):
        blobs_dir = Path(os.path.realpath(repo.folder / "blobs"))
        users: dict[Path, list[tuple[str, str]]] = {}
        for rev in repo.revisions:
            for name, blob in rev.files.items():
                users.setdefault(blob, []).append((rev.commit, name))
        for blob, links in sorted(users.items()):
            used_by = [f"{commit[:12]}/{name}" for commit, name in links]
            entry = repo.folder / "snapshots" / links[0][0] / links[0][1]
            if blob == Path(os.path.realpath(entry)) and not os.path.islink(entry) and entry.is_file():
                continue  # a copy rather than a link (no symlinks on this file system): nothing to follow
            if blob.parent != blobs_dir or blob.name.endswith((".incomplete", ".lock")):
                check = BlobCheck(repo.repo_id, blob, "outside", f"the snapshot entry leads to {blob}, not to a blob "
                                  f"in {blobs_dir}", used_by, links, repo.repo_type)
            elif not blob.exists():
                check = BlobCheck(repo.repo_id, blob, "missing", "the snapshot links to a blob that is gone", used_by,
                                  links, repo.repo_type)
            else:
                continue
            checks.append(check)
            if on_check is not None:
                on_check(check)
        blobs = repo.folder / "blobs"
        for blob in sorted(blobs.iterdir()) if blobs.is_dir() else []:
            if blob.name.endswith((".incomplete", ".lock")):
                continue
            if blob.is_symlink():  # a blob is a regular file; a link here may lead anywhere
                # (the snapshot entries through it were reported above: they lead outside blobs/)
                check = BlobCheck(repo.repo_id, blob, "outside", f"the blob is a symlink to {os.readlink(blob)!r}, "
                                  f"not a file", repo_type=repo.repo_type)
                checks.append(check)
                if on_check is not None:
                    on_check(check)
                continue
            if not blob.is_file():
                continue
            size = blob.stat().st_size
            hasher = BlobHasher.for_etag(blob.name, size)
            if hasher.kind is None:
                check = BlobCheck(repo.repo_id, blob, "unverifiable", "the name is not a sha256 or git sha1")
            else:
                hash_file(blob, hasher)
                ok = hasher.matches()
                links = users.get(Path(os.path.realpath(blob)), [])
                check = BlobCheck(repo.repo_id, blob, "ok" if ok else "corrupt",
                                  "" if ok else f"{hasher.kind} is {hasher.hexdigest()}",
                                  [f"{commit[:12]}/{name}" for commit, name in links], links, repo.repo_type)
            checks.append(check)
            if on_check is not None:
                on_check(check)
    return checks


@dataclass
class Repair:
    check: BlobCheck
    done: bool
    detail: str


def repair_cache(checks: list[BlobCheck], cache_dir: str | os.PathLike[str] | None = None, *,
                 token: str | bool | None = None,
                 on_repair: Callable[[Repair], None] | None = None) -> list[Repair]:
    """Fix what :func:`verify_cache` found: remove corrupt blobs and snapshot entries that lead outside ``blobs/``,
    then fetch again every snapshot file that used them (one revision lookup per commit). Needs the network."""
    from zoo.hub.repo import HubRepo

    repos: dict[tuple[str, str], HubRepo] = {}
    repairs = []
    for check in (c for c in checks if c.bad):
        if check.status == "corrupt" or check.status == "outside" and check.blob.is_symlink() \
                and check.blob.parent.name == "blobs":
            check.blob.unlink(missing_ok=True)
        cache = RepoCache(settings.cache_dir(cache_dir), check.repo_id)
        problems, fixed = [], []
        for commit, name in check.links:
            entry = cache.snapshots / commit / name
            if check.status == "outside" and os.path.islink(entry):
                os.unlink(entry)
            if check.repo_type != "model":
                problems.append(f"{commit[:12]}/{name}: only model repos can be fetched again")
                continue
            repo = repos.get((check.repo_id, commit))
            if repo is None:
                repo = repos[(check.repo_id, commit)] = HubRepo(check.repo_id, revision=commit, token=token,
                                                                cache_dir=cache_dir)
            try:
                path = repo.get(name)
            except ZooError as exc:
                problems.append(f"{commit[:12]}/{name}: {exc}")
                continue
            if path is None:
                problems.append(f"{commit[:12]}/{name}: the Hub no longer lists it at that commit")
            else:
                fixed.append(f"{commit[:12]}/{name}")
        if problems:
            repair = Repair(check, False, "; ".join(problems))
        elif fixed:
            repair = Repair(check, True, "fetched again: " + ", ".join(fixed))
        else:
            repair = Repair(check, True, "removed (no snapshot file used it)")
        repairs.append(repair)
        if on_repair is not None:
            on_repair(repair)
    return repairs
