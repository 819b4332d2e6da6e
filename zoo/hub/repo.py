"""One revision of a Hub repo as a :class:`~zoo.hub.files.RepoFiles`: files from the cache, downloads on demand.

The revision is resolved lazily, on first use, with at most one request for the whole repo
(``GET /api/models/{repo}/revision/{rev}?blobs=true``: commit + every file with its size and hash) instead of
huggingface_hub's HEAD per file. After that a file already in ``snapshots/<commit>/`` costs nothing, a missing one
costs one download, and an absent one is answered from the list (and remembered in ``.no_exist``). A full commit
sha whose file list is cached (``trees/<commit>.json``) needs no request at all. That file list is written only
once the snapshot holds every file of the commit: huggingface_hub's offline ``snapshot_download`` takes a cached
list as the promise that the snapshot folder is complete (``_raise_if_incomplete_snapshot``).

Lookups are remembered in-process for :data:`LOOKUP_TTL_S` seconds, so loading a model and then its tokenizer
resolves ``main`` once. Offline (``HF_HUB_OFFLINE=1``, ``ZOO_OFFLINE=1``, ``local_files_only=True``) nothing is
sent: refs come from ``refs/``. When the Hub cannot be reached and the revision is cached, the cache is used
with one warning.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from zoo.errors import (
    CacheFullError,
    EntryNotFoundError,
    HubError,
    HubUnavailableError,
    OfflineModeError,
    RepoNotFoundError,
    UnsafePathError,
    ZooError,
)
from zoo.hub import settings
from zoo.hub.cache import (
    COMMIT_RE,
    RemoteFile,
    RepoCache,
    RevisionInfo,
    clash_message,
    find_clashes,
    validate_filename,
    validate_repo_id,
    validate_revision,
)

logger = logging.getLogger(__name__)

LOOKUP_TTL_S = 30.0
_lookups: dict[tuple[str, str, str, int], tuple[float, RevisionInfo | None]] = {}
_lookups_lock = threading.Lock()


def forget_lookups() -> None:
    """Drop the in-process memory of revision lookups (the next use of a repo asks the Hub again)."""
    with _lookups_lock:
        _lookups.clear()


class HubRepo:
    """The files of ``repo_id`` at ``revision`` (a branch, tag or full commit sha; default ``main``)."""

    def __init__(self, identifier: str, revision: str | None = None, token: str | bool | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool = False,
                 force_download: bool = False, endpoint: str | None = None) -> None:
        self.identifier = validate_repo_id(str(identifier))
        self.repo_id = self.identifier
        self.revision = validate_revision(revision or settings.DEFAULT_REVISION)
        self.endpoint = settings.endpoint(endpoint)
        self.cache = RepoCache(settings.cache_dir(cache_dir), self.repo_id)
        self.offline = settings.offline(local_files_only)
        self.force_download = bool(force_download) and not self.offline
        self._token_arg = token
        self._info: RevisionInfo | None = None
        self._from_cache_only = self.offline  # True once we answer from the cache alone (offline or fallback)
        self._resolve_lock = threading.RLock()
        self._forced: set[str] = set()
        self._clashes: dict[str, str] | None = None
        # Set by zoo.hub.files.repo_files when the identifier could have been a local folder (and is not one): the
        # errors of an unknown or unreachable repo then say so, for the user who mistyped a folder name.
        self.no_local_folder: str | None = None

    def __repr__(self) -> str:
        return f"HubRepo({self.repo_id!r}, revision={self.revision!r})"

    # --- revision -----------------------------------------------------------------------------------------------

    @property
    def commit(self) -> str:
        """The commit sha the revision resolves to (asking the Hub, or the cache when offline)."""
        return self._resolve().commit

    @property
    def snapshot_folder(self) -> Path:
        return self.cache.snapshot_dir(self.commit)

    def _subject(self, filename: str | None = None, commit: str | None = None):
        from zoo.hub.client import Subject

        return Subject(self.endpoint, self.repo_id, self.revision, filename, commit)

    def _token(self) -> str | None:
        return settings.token(self._token_arg)

    def _memo_key(self) -> tuple[str, str, str, int]:
        return (self.endpoint, self.repo_id, self.revision, hash(self._token() or ""))

    def _resolve(self) -> RevisionInfo:
        with self._resolve_lock:
            if self._info is None:
                try:
                    self._info = self._lookup()
                except (HubUnavailableError, RepoNotFoundError, OfflineModeError) as exc:
                    if self.no_local_folder is not None and exc.args:
                        exc.args = (f"no local folder '{self.identifier}' exists ({self.no_local_folder}), so it was "
                                    f"taken as a Hub repo id, and: {exc.args[0]}",) + exc.args[1:]
                    raise
            return self._info

    def _check_clash(self, info: RevisionInfo, filename: str) -> None:
        if info.files is None:
            return
        if self._clashes is None:
            self._clashes = find_clashes(info.files)
        other = self._clashes.get(filename)
        if other is not None:
            raise UnsafePathError(clash_message(self.repo_id, self.revision, filename, other))

    def _lookup(self) -> RevisionInfo:
        if self.offline:
            return self._from_cache(None)
        if COMMIT_RE.match(self.revision) and not self.force_download:
            files = self.cache.read_tree(self.revision)
            if files is not None:
                return RevisionInfo(self.revision, files)  # a commit never changes: no request needed
        key = self._memo_key()
        if not self.force_download:
            with _lookups_lock:
                memo = _lookups.get(key)
            if memo is not None and time.monotonic() - memo[0] < LOOKUP_TTL_S:
                if memo[1] is not None:
                    self._record(memo[1], tree_known=True)  # this cache_dir may not have seen the lookup yet
                    return memo[1]
                self._from_cache_only = True  # the Hub was unreachable moments ago: do not wait for it again
                return self._from_cache(None)
        from zoo.hub import client

        cached_commit = self.cache.read_ref(self.revision)
        has_cached = cached_commit is not None and self.cache.snapshot_dir(cached_commit).is_dir()
        try:
            # With a cached copy to fall back on, fail fast (as huggingface_hub does); without one, retry as hard
            # as for a download.
            info = client.fetch_revision(self._subject(), token=self._token(), timeout=settings.metadata_timeout(),
                                         retries=0 if has_cached else client.MAX_RETRIES)
        except HubUnavailableError as exc:
            if not has_cached:
                raise
            with _lookups_lock:
                _lookups[key] = (time.monotonic(), None)
            self._from_cache_only = True
            logger.warning("%s; using the cached snapshot %s of %s", exc, cached_commit, self.repo_id)
            return self._from_cache(exc)
        self._record(info)
        with _lookups_lock:
            _lookups[key] = (time.monotonic(), info)
        return info

    def _record(self, info: RevisionInfo, tree_known: bool = False) -> None:
        """Write what a lookup taught into the cache: the ref (the file list waits for a complete snapshot)."""
        self.cache.write_ref(self.revision, info.commit)

    def _record_tree_if_complete(self, info: RevisionInfo) -> None:
        """Write ``trees/<commit>.json`` once the snapshot holds every listed file, as huggingface_hub expects."""
        if info.files is None or self._from_cache_only or self.cache.has_tree(info.commit):
            return
        if all(self.cache.cached_file(info.commit, name) is not None for name in info.files):
            self.cache.write_tree(info.commit, info.files)

    def _from_cache(self, cause: BaseException | None) -> RevisionInfo:
        """The revision as the cache knows it, with no request."""
        commit = self.cache.read_ref(self.revision)
        if commit is None or not self.cache.snapshot_dir(commit).is_dir() and self.cache.read_tree(commit) is None:
            raise OfflineModeError(self._not_cached_message(None)) from cause
        return RevisionInfo(commit, self.cache.read_tree(commit))

    def _not_cached_message(self, filename: str | None) -> str:
        what = f"'{filename}' of '{self.repo_id}'" if filename else f"'{self.repo_id}'"
        why = ("offline mode is on (HF_HUB_OFFLINE / ZOO_OFFLINE / local_files_only=True)" if self.offline
               else "the Hub could not be reached")
        return (f"{what} at revision '{self.revision}' is not in the cache ({self.cache.root}) and {why}; fetch it "
                f"while online with `zoo download {self.repo_id}{' ' + filename if filename else ''}"
                f"{'' if self.revision == 'main' else ' --revision ' + self.revision}`")

    # --- RepoFiles ----------------------------------------------------------------------------------------------

    def files(self) -> list[str]:
        """Every file of the revision (as listed by the Hub, or as cached when offline)."""
        info = self._resolve()
        if info.files is not None:
            return sorted(info.files)
        folder = self.cache.snapshot_dir(info.commit)
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def exists(self, filename: str) -> bool:
        """Whether the revision has ``filename`` (from the file list; no download)."""
        validate_filename(filename)
        if COMMIT_RE.match(self.revision) and not self.force_download:
            if self.cache.cached_file(self.revision, filename):
                return True
            if self.cache.is_known_missing(self.revision, filename):
                return False
        info = self._resolve()
        if info.files is not None:
            if filename not in info.files and not self._from_cache_only:
                # remembered, so a pinned commit answers this again with no request (its file list is cached only
                # once the snapshot is complete)
                self.cache.mark_missing(info.commit, filename)
            return filename in info.files
        return self.cache.cached_file(info.commit, filename) is not None

    def get(self, filename: str) -> Path | None:
        """Path of ``filename`` inside ``snapshots/<commit>/``, downloading it if needed; None if the repo has none."""
        validate_filename(filename)
        if COMMIT_RE.match(self.revision) and not self.force_download:
            cached = self._cached(self.revision, filename)
            if cached is not False:
                return cached
        info = self._resolve()
        self._check_clash(info, filename)
        if not (self.force_download and filename not in self._forced):
            cached = self._cached(info.commit, filename)
            if cached is not False:
                return cached
        if info.files is not None and filename not in info.files:
            if not self._from_cache_only:
                self.cache.mark_missing(info.commit, filename)
            return None
        if self._from_cache_only:
            logger.debug("%s", self._not_cached_message(filename))
            return None  # unknown offline: callers probing optional files go on; require() says how to fetch
        return self._download(info, filename)

    def require(self, filename: str) -> Path:
        """Like :meth:`get`, but a missing file is an error naming repo, revision and file."""
        path = self.get(filename)
        if path is not None:
            return path
        info = self._resolve()
        if self._from_cache_only and not (info.files is not None and filename not in info.files) \
                and not self.cache.is_known_missing(info.commit, filename):
            raise OfflineModeError(self._not_cached_message(filename))
        listing = self.files()
        shown = ", ".join(listing[:20]) + (f", ... ({len(listing)} files)" if len(listing) > 20 else "")
        raise EntryNotFoundError(
            f"Repository '{self.repo_id}' has no file '{filename}' at revision '{self.revision}' (commit "
            f"{info.commit[:12]}); it holds: {shown or 'no files'}"
        )

    def _cached(self, commit: str, filename: str) -> Path | None | bool:
        """The cached path, None if known absent, False if the cache does not know."""
        path = self.cache.cached_file(commit, filename)
        if path is not None:
            return path
        return None if self.cache.is_known_missing(commit, filename) else False

    # --- downloads ----------------------------------------------------------------------------------------------

    def _download(self, info: RevisionInfo, filename: str, on_bytes=None) -> Path:
        from zoo.hub import client, transfer

        subject = self._subject(filename, info.commit)
        entry = (info.files or {}).get(filename) or RemoteFile(filename)
        url = client.resolve_url(self.endpoint, self.repo_id, info.commit, filename)
        etag, size = entry.etag, entry.size
        if etag is None:  # the listing had no hashes: ask for this file's metadata (HEAD)
            try:
                meta = client.fetch_file_metadata(subject, token=self._token(), timeout=settings.metadata_timeout())
            except EntryNotFoundError:
                self.cache.mark_missing(info.commit, filename)
                raise
            if meta.etag is None:
                raise HubError(f"{self.endpoint} sent no ETag for {subject.describe()}; it does not look like a Hub")
            # Verified like every blob: a 40-hex ETag is the git blob sha1 (huggingface_hub names the blob by it,
            # so a body that does not match it would be a blob whose name lies).
            etag, size, url = meta.etag, meta.size if size is None else size, meta.location
        try:
            blob = transfer.download_to_blob(self.cache, etag, url, subject, token=self._token(), size=size,
                                             force=self.force_download and filename not in self._forced,
                                             on_bytes=on_bytes)
        except EntryNotFoundError:
            self.cache.mark_missing(info.commit, filename)
            raise
        self._forced.add(filename)
        try:
            return self.cache.link(info.commit, filename, etag)
        except OSError as exc:
            if exc.errno not in transfer._DISK_FULL or isinstance(exc, ZooError):
                raise
            raise CacheFullError(
                f"No space left on the disk of the cache {self.cache.root} while linking {subject.describe()} into "
                f"{self.cache.snapshot_dir(info.commit)} (the file itself is downloaded: {blob}); free some space "
                f"(`zoo cache ls`, `zoo cache rm REPO`) and run again"
            ) from None

    def snapshot(self, allow_patterns: str | Iterable[str] | None = None,
                 ignore_patterns: str | Iterable[str] | None = None, max_workers: int = 8) -> Path:
        """Download every file of the revision matching the patterns (in parallel); returns the snapshot folder."""
        info = self._resolve()
        folder = self.cache.snapshot_dir(info.commit)
        if info.files is None:
            if self._from_cache_only:
                if folder.is_dir():
                    return folder
                raise OfflineModeError(self._not_cached_message(None))
            raise HubError(f"{self.endpoint} listed no files for '{self.repo_id}' at revision '{self.revision}' "
                           f"(the revision lookup had no 'siblings'); download files by name instead")
        else:
            files = info.files
        wanted = [files[name] for name in filter_paths(files, allow_patterns, ignore_patterns)]
        for entry in wanted:
            validate_filename(entry.path)
            self._check_clash(info, entry.path)
        todo = [e for e in wanted if self.force_download or self.cache.cached_file(info.commit, e.path) is None]
        if todo and self._from_cache_only:
            names = ", ".join(e.path for e in todo[:10])
            raise OfflineModeError(f"{self._not_cached_message(None)} (missing from the cached snapshot: {names})")
        if todo:
            self._download_many(info, todo, max_workers)
        folder.mkdir(parents=True, exist_ok=True)
        self._record_tree_if_complete(info)
        return folder

    def _download_many(self, info: RevisionInfo, todo: list[RemoteFile], max_workers: int) -> None:
        total = sum(e.size or 0 for e in todo)
        bar = None
        if settings.progress_bars_enabled():
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"{self.repo_id} ({len(todo)} files)", unit="B", unit_scale=True,
                       unit_divisor=1024)
        lock = threading.Lock()
        cancel = threading.Event()

        def on_bytes(n: int) -> None:
            if cancel.is_set():  # another file failed or the user interrupted: stop, keep the .incomplete to resume
                raise _Cancelled()
            if bar is not None:
                with lock:
                    bar.update(n)

        try:
            if max_workers <= 1 or len(todo) == 1:
                for entry in todo:
                    self._download(info, entry.path, on_bytes)
                return
            # Largest first, so one big file does not start last and leave the other threads idle.
            todo = sorted(todo, key=lambda e: -(e.size or 0))
            with ThreadPoolExecutor(max_workers=min(max_workers, len(todo)), thread_name_prefix="zoo-hub") as pool:
                futures = [pool.submit(self._download, info, e.path, on_bytes) for e in todo]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    cancel.set()
                    raise
        finally:
            if bar is not None:
                bar.close()


class _Cancelled(Exception):
    """Raised inside a download thread to stop it when the snapshot it belongs to has failed."""


def filter_paths(paths: Iterable[str], allow_patterns: str | Iterable[str] | None,
                 ignore_patterns: str | Iterable[str] | None) -> list[str]:
    """huggingface_hub's ``filter_repo_objects``: fnmatch, case-sensitive; ``dir/`` means ``dir/*``."""
    def norm(patterns: str | Iterable[str] | None) -> list[str] | None:
        if patterns is None:
            return None
        items = [patterns] if isinstance(patterns, str) else list(patterns)
        return [p + "*" if p.endswith("/") else p for p in (i.replace("\\", "/") for i in items)]

    allow, ignore = norm(allow_patterns), norm(ignore_patterns)
    return [
        p for p in sorted(paths)
        if (allow is None or any(fnmatch.fnmatchcase(p, pat) for pat in allow))
        and not (ignore and any(fnmatch.fnmatchcase(p, pat) for pat in ignore))
    ]
