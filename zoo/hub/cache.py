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

Every entry the layout has as a regular file (blobs, ``.incomplete`` files, refs, trees, locks) is refused when it
is a symlink or anything else, before it is opened (:func:`check_regular`), and partial files are opened with
``O_NOFOLLOW``: a planted link must not make zoo read or write outside the cache. Snapshot entries are links, and
count as cached only when they lead into this repo's ``blobs/``. Nothing here touches the network.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zoo.errors import InvalidRepoIdError, UnsafeCacheEntryError, UnsafePathError

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
NAME_MAX_BYTES = 255  # the longest file name ext4, APFS, NTFS and most others allow (ENAMETOOLONG past it)
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


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


def shown(name: str, limit: int = 80) -> str:
    """``repr(name)`` for a message, shortened in the middle when it is very long (a 300-character name)."""
    text = repr(name)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-limit // 4:]} ({len(name)} characters)"


def validate_filename(filename: str) -> str:
    """A repo-relative POSIX path that stays inside the snapshot on every OS, and that the file system can hold;
    anything else is refused."""
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
            f"refusing file name {shown(filename)}: absolute paths, '..' or empty components and backslashes would "
            f"escape the snapshot folder"
        )
    for part in parts:
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > NAME_MAX_BYTES:
            which = "it" if part == filename else f"its part {shown(part, 40)}"
            raise UnsafePathError(
                f"refusing file name {shown(filename)}: {which} is {size} bytes long, and file "
                f"systems hold at most {NAME_MAX_BYTES} bytes in one name (ENAMETOOLONG); the file cannot be cached"
            )
    return filename


def find_clashes(names: list[str] | set[str] | dict[str, object]) -> dict[str, str]:
    """Names that are both a file and a folder in one listing (``a`` and ``a/b``): name -> the entry it clashes with.

    Git cannot hold both, so a listing that has both is broken; the snapshot folder cannot hold both either.
    """
    files = set(names)
    clashes: dict[str, str] = {}
    for name in sorted(files):
        parts = name.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in files:
                clashes.setdefault(name, folder)
                clashes.setdefault(folder, name)
                break
    return clashes


def clash_message(repo_id: str, revision: str, name: str, other: str) -> str:
    """The error for a listing that has ``name`` and ``other`` where one is a folder of the other."""
    file, inside = (name, other) if other.startswith(name + "/") else (other, name)
    return (f"refusing file {shown(name)} of '{repo_id}' at revision '{revision}': the Hub lists both a file "
            f"{shown(file)} and {shown(inside)} inside a folder of that name; one folder cannot hold a file and a "
            f"folder of the same name (nor can git), so the listing is inconsistent: ask the repo's owner to fix it")


def check_regular(path: Path, what: str) -> bool:
    """Whether ``path`` exists; raise if it is there but is not a regular file (a symlink, a folder, a fifo).

    huggingface_hub's layout has regular files at these places; following a link planted there would read or write
    outside the cache.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False
    if stat.S_ISREG(st.st_mode):
        return True
    if stat.S_ISLNK(st.st_mode):
        try:
            target = f"a symlink to {os.readlink(path)!r}"
        except OSError:
            target = "a symlink"
    else:
        target = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
    raise UnsafeCacheEntryError(
        f"refusing the cache entry {path}: it is {target} where the cache layout has a regular file ({what}); "
        f"zoo does not read or write through it. Remove it (e.g. `rm {path}`) and try again"
    )


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


def hash_stream(f: BinaryIO, hasher: BlobHasher, chunk: int = 4 << 20) -> BlobHasher:
    """Feed ``hasher`` everything in the open file ``f``, from its first byte (a partial download is hashed through
    the descriptor it was opened with, never reopened by name)."""
    f.seek(0)
    while data := f.read(chunk):
        hasher.update(data)
    return hasher


def hash_file(path: Path, hasher: BlobHasher, chunk: int = 4 << 20) -> BlobHasher:
    with open(path, "rb") as f:
        return hash_stream(f, hasher, chunk)


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
        path = self.root / ".locks" / self.folder.name / f"{etag}.lock"
        check_regular(path, "a blob's lock file")
        return path

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
        path = self.folder / "refs" / validate_revision(revision)
        try:
            if not check_regular(path, f"the commit of ref {revision!r}"):
                return None
            value = path.read_text(encoding="utf-8").strip()
        except UnsafeCacheEntryError:
            raise
        except (OSError, UnicodeDecodeError):
            return None
        return value if COMMIT_RE.match(value) else None

    def write_ref(self, revision: str, commit: str) -> None:
        if revision == commit or COMMIT_RE.match(revision):
            return
        path = self.folder / "refs" / validate_revision(revision)
        try:
            if check_regular(path, f"the commit of ref {revision!r}") and path.read_text(encoding="utf-8") == commit:
                return  # leave read-only caches alone when nothing changed
            _write_atomic(path, commit)
        except OSError as exc:
            logger.warning("Could not record %s -> %s in %s: %s", revision, commit, path, exc)

    # files

    def cached_file(self, commit: str, filename: str) -> Path | None:
        """The snapshot entry of ``filename``, if it leads to a blob of this repo (or is a copy, as on Windows)."""
        path = self.pointer_path(commit, filename)
        try:
            if not os.path.islink(path):
                return path if path.is_file() else None
            target = Path(os.path.realpath(path))
        except OSError:  # e.g. a file where a folder of the path should be
            return None
        if not target.is_file():
            return None
        if target.parent != Path(os.path.realpath(self.blobs)) or target.name.endswith((".incomplete", ".lock")):
            logger.warning("Ignoring the snapshot entry %s: it links to %s, not to a blob of %s; fetching it again",
                           path, target, self.repo_id)
            return None
        return path

    def is_known_missing(self, commit: str, filename: str) -> bool:
        validate_filename(filename)
        return (self.folder / ".no_exist" / validate_revision(commit) / filename).is_file()

    def mark_missing(self, commit: str, filename: str) -> None:
        validate_filename(filename)
        path = self.folder / ".no_exist" / validate_revision(commit) / filename
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | O_NOFOLLOW, 0o644))  # touch, never through a link
        except OSError as exc:
            logger.debug("Could not record that %s has no %s: %s", self.repo_id, filename, exc)

    def link(self, commit: str, filename: str, etag: str) -> Path:
        """Point ``snapshots/<commit>/<filename>`` at ``blobs/<etag>`` with a relative symlink, atomically."""
        pointer = self.pointer_path(commit, filename)
        blob = self.blob_path(etag)
        try:
            return self._link(commit, filename, pointer, blob)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise UnsafePathError(self._clash_message(commit, filename, exc)) from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise UnsafePathError(f"refusing file name {shown(filename)} of '{self.repo_id}': its path in the "
                                      f"cache is too long for the file system (ENAMETOOLONG: {pointer}); use a "
                                      f"shorter cache folder (ZOO_CACHE / cache_dir)") from None
            raise

    def _link(self, commit: str, filename: str, pointer: Path, blob: Path) -> Path:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        if not pointer.parent.resolve().is_relative_to(self.snapshot_dir(commit).resolve()):
            raise UnsafePathError(f"refusing {shown(filename)}: its folder resolves outside "
                                  f"{self.snapshot_dir(commit)}")
        target = os.path.relpath(blob, pointer.parent)
        if os.path.islink(pointer) and os.readlink(pointer) == target:
            return pointer
        if os.path.isdir(pointer) and not os.path.islink(pointer):
            raise IsADirectoryError(errno.EISDIR, "a folder is in the way", str(pointer))
        tmp = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            os.symlink(target, tmp)
        except OSError as exc:  # no symlinks here (Windows without developer mode): a copy, as huggingface_hub does
            if exc.errno in (errno.ENAMETOOLONG, errno.ENOSPC, errno.EDQUOT):
                raise
            shutil.copyfile(blob, tmp)
        try:
            os.replace(tmp, pointer)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return pointer

    def _clash_message(self, commit: str, filename: str, exc: OSError) -> str:
        snapshot = self.snapshot_dir(commit)
        parts = filename.split("/")
        other = None
        for i in range(1, len(parts)):  # a file where one of the name's folders should be
            if not os.path.isdir(snapshot.joinpath(*parts[:i])) and os.path.lexists(snapshot.joinpath(*parts[:i])):
                other = f"a file '{'/'.join(parts[:i])}'"
                break
        if other is None and os.path.isdir(snapshot.joinpath(*parts)):  # a folder where the file should be
            inside = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.joinpath(*parts).rglob("*")
                            if not p.is_dir())
            other = f"a folder '{filename}/'" + (f" (holding '{inside[0]}')" if inside else "")
        other = other or f"another entry ({type(exc).__name__})"
        return (f"refusing file {shown(filename)} of '{self.repo_id}' at commit {commit[:12]}: the snapshot already "
                f"holds {other}, and one folder cannot hold a file and a folder of the same name; the repo listing "
                f"is inconsistent (git cannot hold both), so ask its owner to fix it")

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
        return check_regular(self.folder / "trees" / f"{validate_revision(commit)}.json", f"the file list of {commit}")

    def read_tree(self, commit: str) -> dict[str, RemoteFile] | None:
        path = self.folder / "trees" / f"{validate_revision(commit)}.json"
        try:
            if not check_regular(path, f"the file list of commit {commit}"):
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format_version") != TREE_FORMAT_VERSION:
                return None
            return {
                name: RemoteFile(name, info.get("size"), info.get("blob_id"), info.get("lfs_sha256"))
                for name, info in data["files"].items()
            }
        except UnsafeCacheEntryError:
            raise
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
