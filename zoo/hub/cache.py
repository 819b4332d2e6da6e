"""huggingface_hub's cache layout, byte for byte, so zoo and huggingface_hub share one cache.

Reference: huggingface_hub ``file_download.py`` (``hf_hub_download``, ``try_to_load_from_cache``) and
``_tree_cache.py``. One folder per repo under the cache root::

    models--org--name/
      blobs/<etag>                 file contents; etag = sha256 for LFS files, git blob sha1 otherwise
      blobs/<etag>.incomplete      a download in progress (resumed with an HTTP Range request)
      refs/<branch or tag>         the commit sha the ref pointed to when last seen
      snapshots/<commit>/<path>    relative symlink -> ../../blobs/<etag> (one more ../ per folder level)
      .no_exist/<commit>/<path>    empty file: the repo has no such file at that commit
      trees/<commit>.json          the file list of a commit (immutable, so cached forever)
    .locks/models--org--name/<etag>.lock   one filelock per blob, the same path huggingface_hub locks
    CACHEDIR.TAG

Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import InvalidRepoIdError, UnsafePathError

logger = logging.getLogger(__name__)

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID_RE = re.compile(r"^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$")  # huggingface_hub's REPO_ID_REGEX
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)
TREE_FORMAT_VERSION = 1


# --- names ----------------------------------------------------------------------------------------------------------


def validate_repo_id(repo_id: str) -> str:
    """``name`` or ``org/name``, with the characters the Hub allows ('--' and '..' are reserved)."""
    if (
        not _REPO_ID_RE.match(repo_id)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise InvalidRepoIdError(
            f"{repo_id!r} is not a valid Hub repo id: expected 'name' or 'org/name' made of letters, digits, '-', "
            f"'_' and '.' (no '--' or '..'); if you meant a local folder, it does not exist"
        )
    return repo_id


def validate_revision(revision: str) -> str:
    """A branch, tag or commit; refuse names that would escape ``refs/`` once used as a path."""
    parts = revision.split("/")
    if not revision or revision.startswith("/") or "\\" in revision or "\0" in revision or any(p in ("", ".", "..") for p in parts):
        raise UnsafePathError(f"revision {revision!r} is not a valid branch, tag or commit name")
    return revision


def validate_filename(filename: str) -> str:
    """A repo-relative POSIX path that stays inside the snapshot on every OS; anything else is refused."""
    parts = filename.split("/")
    if (
        not filename
        or filename.startswith("/")
        or "\\" in filename
        or "\0" in filename
        or re.match(r"^[A-Za-z]:", filename)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise UnsafePathError(
            f"refusing file name {filename!r}: absolute paths, '..' or empty components and backslashes would "
            f"escape the snapshot folder"
        )
    return filename


def repo_folder_name(repo_id: str, repo_type: str = "model") -> str:
    """``org/name`` -> ``models--org--name`` (huggingface_hub's ``repo_folder_name``)."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


# --- what the Hub says a revision holds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    """One file of a revision, as listed by ``/api/models/{repo}/revision/{rev}?blobs=true``."""

    path: str
    size: int | None = None
    blob_id: str | None = None  # git blob sha1
    lfs_sha256: str | None = None

    @property
    def etag(self) -> str | None:
        """The blob's name in the cache: what the Hub sends as ``X-Linked-Etag`` (LFS) or ``ETag`` (git)."""
        return self.lfs_sha256 or self.blob_id


@dataclass(frozen=True)
class RevisionInfo:
    """A revision resolved to its commit, with the file list (None where only the commit is known)."""

    commit: str
    files: dict[str, RemoteFile] | None


# --- hashing --------------------------------------------------------------------------------------------------------


class BlobHasher:
    """Hash that the bytes of a blob must match: sha256 for LFS blobs, the git blob sha1 for the others."""

    def __init__(self, kind: str | None, expected: str | None, size: int | None) -> None:
        self.kind = kind if expected else None
        self.expected = expected
        self._h = hashlib.sha256() if self.kind == "sha256" else hashlib.sha1() if self.kind == "git-sha1" else None
        if self._h is not None and self.kind == "git-sha1":
            if size is None:
                self._h, self.kind = None, None
            else:
                self._h.update(b"blob %d\0" % size)

    @classmethod
    def for_etag(cls, etag: str, size: int | None) -> BlobHasher:
        if SHA256_RE.match(etag):
            return cls("sha256", etag, size)
        if COMMIT_RE.match(etag):
            return cls("git-sha1", etag, size)
        return cls(None, None, size)

    def update(self, data: bytes | memoryview) -> None:
        if self._h is not None:
            self._h.update(data)

    def matches(self) -> bool:
        return self._h is None or self._h.hexdigest() == self.expected

    def hexdigest(self) -> str | None:
        return self._h.hexdigest() if self._h is not None else None


def hash_file(path: Path, hasher: BlobHasher, chunk: int = 4 << 20) -> BlobHasher:
    with open(path, "rb") as f:
        while data := f.read(chunk):
            hasher.update(data)
    return hasher


# --- one repo's folder ----------------------------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class RepoCache:
    """The cache folder of one repo: paths, refs, snapshot links, absence markers, file lists."""

    def __init__(self, root: Path, repo_id: str) -> None:
        self.root = Path(root)
        self.repo_id = repo_id
        self.folder = self.root / repo_folder_name(repo_id)
        self.blobs = self.folder / "blobs"
        self.snapshots = self.folder / "snapshots"

    def lock_path(self, etag: str) -> Path:
        return self.root / ".locks" / self.folder.name / f"{etag}.lock"

    def blob_path(self, etag: str) -> Path:
        if not re.match(r"^[A-Za-z0-9._\-]+$", etag) or etag in (".", ".."):
            raise UnsafePathError(f"refusing etag {etag!r} from the server as a blob name")
        return self.blobs / etag

    def snapshot_dir(self, commit: str) -> Path:
        return self.snapshots / validate_revision(commit)

    def pointer_path(self, commit: str, filename: str) -> Path:
        return self.snapshot_dir(commit).joinpath(*validate_filename(filename).split("/"))

    # refs

    def read_ref(self, revision: str) -> str | None:
        """The commit of a branch or tag as last seen; a full commit sha is its own ref."""
        if COMMIT_RE.match(revision):
            return revision
        try:
            value = (self.folder / "refs" / validate_revision(revision)).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return value if COMMIT_RE.match(value) else None

    def write_ref(self, revision: str, commit: str) -> None:
        if revision == commit or COMMIT_RE.match(revision):
            return
        path = self.folder / "refs" / validate_revision(revision)
        try:
            if path.is_file() and path.read_text(encoding="utf-8") == commit:
                return  # leave read-only caches alone when nothing changed
            _write_atomic(path, commit)
        except OSError as exc:
            logger.warning("Could not record %s -> %s in %s: %s", revision, commit, path, exc)

    # files

    def cached_file(self, commit: str, filename: str) -> Path | None:
        path = self.pointer_path(commit, filename)
        return path if path.is_file() else None

    def is_known_missing(self, commit: str, filename: str) -> bool:
        validate_filename(filename)
        return (self.folder / ".no_exist" / validate_revision(commit) / filename).is_file()

    def mark_missing(self, commit: str, filename: str) -> None:
        validate_filename(filename)
        path = self.folder / ".no_exist" / validate_revision(commit) / filename
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError as exc:
            logger.debug("Could not record that %s has no %s: %s", self.repo_id, filename, exc)

    def link(self, commit: str, filename: str, etag: str) -> Path:
        """Point ``snapshots/<commit>/<filename>`` at ``blobs/<etag>`` with a relative symlink, atomically."""
        pointer = self.pointer_path(commit, filename)
        blob = self.blob_path(etag)
        pointer.parent.mkdir(parents=True, exist_ok=True)
        if not pointer.parent.resolve().is_relative_to(self.snapshot_dir(commit).resolve()):
            raise UnsafePathError(f"refusing {filename!r}: its folder resolves outside {self.snapshot_dir(commit)}")
        target = os.path.relpath(blob, pointer.parent)
        if os.path.islink(pointer) and os.readlink(pointer) == target:
            return pointer
        tmp = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            os.symlink(target, tmp)
        except OSError:  # no symlinks here (Windows without developer mode): a copy, as huggingface_hub does
            shutil.copyfile(blob, tmp)
        try:
            os.replace(tmp, pointer)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return pointer

    def tag_cache_root(self) -> None:
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                tag.write_text(CACHEDIR_TAG, encoding="utf-8")
            except OSError:
                pass

    # file lists (huggingface_hub's trees/<commit>.json, format_version 1)

    def has_tree(self, commit: str) -> bool:
        return (self.folder / "trees" / f"{validate_revision(commit)}.json").is_file()

    def read_tree(self, commit: str) -> dict[str, RemoteFile] | None:
        path = self.folder / "trees" / f"{validate_revision(commit)}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format_version") != TREE_FORMAT_VERSION:
                return None
            return {
                name: RemoteFile(name, info.get("size"), info.get("blob_id"), info.get("lfs_sha256"))
                for name, info in data["files"].items()
            }
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("Ignoring unreadable file list %s: %s", path, exc)
            return None

    def write_tree(self, commit: str, files: dict[str, RemoteFile]) -> None:
        if not all(f.blob_id and f.size is not None for f in files.values()):
            return  # huggingface_hub requires blob ids and sizes; a partial list would mislead it
        entries = {}
        for name in sorted(files):
            f = files[name]
            info: dict[str, object] = {"size": f.size, "blob_id": f.blob_id}
            if f.lfs_sha256:
                info.update(lfs_sha256=f.lfs_sha256, lfs_size=f.size)
            entries[name] = info
        try:
            _write_atomic(self.folder / "trees" / f"{commit}.json",
                          json.dumps({"format_version": TREE_FORMAT_VERSION, "files": entries}, indent=1))
        except OSError as exc:
            logger.debug("Could not write the file list of %s@%s: %s", self.repo_id, commit, exc)
