"""Getting one blob into the cache safely: lock, ``.incomplete``, resume, verify, atomic rename.

After huggingface_hub's ``_download_to_tmp_and_move`` and ``http_get``, with two differences: the partial file is
``blobs/<etag>.incomplete`` under a per-blob filelock (the lock file is the one huggingface_hub takes, so the two
libraries never write one blob at once), which lets an interrupted download resume with an HTTP Range request; and
every blob is verified before it is renamed into place: its size, and its sha256 (LFS files) or git blob sha1 (the
others; a 40-hex ETag is the git blob id, as huggingface_hub names the blob by it). A download that is cut, short or
corrupt therefore never appears in ``blobs/`` or ``snapshots/``.

Retries are bounded by one :class:`~zoo.hub.client.RetryBudget` per blob, shared by every request of the download:
progress means bytes past the furthest point the download has reached, so a server that ignores ``Range`` (answers
200 to a resume) and cuts again at the same place uses the budget up instead of looping. A link planted at the
``.incomplete`` path is refused (and the file is opened with ``O_NOFOLLOW``); a full disk is a
:class:`~zoo.errors.CacheFullError` that says how much was needed and where.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from zoo.errors import CacheFullError, CorruptDownloadError, HubUnavailableError, ZooError
from zoo.hub import client, settings
from zoo.hub.cache import COMMIT_RE, O_NOFOLLOW, BlobHasher, RepoCache, check_regular, hash_stream

logger = logging.getLogger(__name__)

CHUNK_BYTES = 4 << 20
LARGE_FILE_BYTES = 8 << 20  # files at least this big get a progress bar of their own
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _progress_bar(name: str, total: int | None, initial: int):
    if not settings.progress_bars_enabled() or (total is not None and total < LARGE_FILE_BYTES):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name[-40:], unit="B", unit_scale=True, unit_divisor=1024,
                leave=False)


def download_to_blob(cache: RepoCache, etag: str, url: str, subject: client.Subject, *, token: str | None,
                     size: int | None, force: bool = False,
                     on_bytes: Callable[[int], None] | None = None) -> Path:
    """Make ``blobs/<etag>`` hold the file at ``url``, downloading it unless it is there; returns the blob path.

    The bytes are checked against the etag (sha256, or the git blob sha1 for a 40-hex etag) and ``size`` when
    known. Only one process or thread downloads a given blob at a time.
    """
    blob = cache.blob_path(etag)
    lock = cache.lock_path(etag)
    incomplete = blob.with_name(f"{etag}.incomplete")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        blob.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock), mode=0o664):
            if check_regular(blob, "a downloaded file") and not force:
                return blob  # another process finished it while we waited for the lock
            check_regular(incomplete, "a partial download")
            if force:
                incomplete.unlink(missing_ok=True)
            budget = client.RetryBudget()
            for fresh_start in (False, True):
                written, hasher = _fetch(incomplete, url, subject, token=token, size=size, etag=etag,
                                         on_bytes=on_bytes, budget=budget)
                problem = _check(incomplete, written, hasher, size, etag)
                if problem is None:
                    break
                incomplete.unlink(missing_ok=True)
                if on_bytes:
                    on_bytes(-written)  # the overall progress bar counts the bytes again
                if fresh_start:
                    raise CorruptDownloadError(
                        f"Downloaded {subject.describe()} ({client._safe_url(url)}), but {problem}; nothing was "
                        f"written to the cache. Retry; if it happens again the server holds a damaged copy"
                    )
                logger.warning("Discarding a bad download of %s (%s); downloading it again from the start",
                               subject.describe(), problem)
            os.replace(incomplete, blob)
    except OSError as exc:
        if exc.errno in _DISK_FULL and not isinstance(exc, ZooError):
            raise _disk_full(cache, subject, size, incomplete) from None
        if exc.errno == errno.ELOOP and not isinstance(exc, ZooError):  # a link appeared after check_regular
            for path, what in ((lock, "a blob's lock file"), (incomplete, "a partial download")):
                check_regular(path, what)
        raise
    cache.tag_cache_root()
    logger.debug("Stored %s as %s", subject.describe(), blob)
    return blob


def _disk_full(cache: RepoCache, subject: client.Subject, size: int | None, incomplete: Path) -> CacheFullError:
    try:
        kept = os.lstat(incomplete).st_size
    except OSError:
        kept = 0
    try:
        free = f"{shutil.disk_usage(cache.root).free} bytes free there now"
    except OSError:
        free = "free space unknown"
    needed = f"{size} bytes" if size is not None else f"more than {kept} bytes (the server did not say how many)"
    error = CacheFullError(
        f"No space left on the disk of the cache {cache.root} while downloading {subject.describe()}: the file "
        f"needs {needed}, {kept} written so far, {free}. Free some space (`zoo cache ls`, `zoo cache rm REPO`) or "
        f"point ZOO_CACHE / HF_HUB_CACHE (or cache_dir) at a larger disk, then run again: the download resumes from "
        f"the {kept} bytes kept in {incomplete}"
    )
    error.errno = errno.ENOSPC
    return error


def _check(incomplete: Path, written: int, hasher: BlobHasher, size: int | None, etag: str) -> str | None:
    if size is not None and written != size:
        return f"it is {written} bytes where {size} were announced"
    if hasher.kind is None and COMMIT_RE.match(etag):
        # a git blob id hashes the size first: with no size announced, hash the file now that its size is known
        hasher = BlobHasher.for_etag(etag, written)
        with _open_partial(incomplete) as f:
            hash_stream(f, hasher, CHUNK_BYTES)
    if not hasher.matches():
        return f"its {hasher.kind} is {hasher.hexdigest()} where {hasher.expected} was announced"
    return None


def _open_partial(path: Path) -> BinaryIO:
    """The partial file, for reading what is there and appending; never through a symlink (``O_NOFOLLOW``)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            check_regular(path, "a partial download")
        raise
    return os.fdopen(fd, "a+b")


def _fetch(incomplete: Path, url: str, subject: client.Subject, *, token: str | None, size: int | None,
           etag: str, on_bytes: Callable[[int], None] | None,
           budget: client.RetryBudget) -> tuple[int, BlobHasher]:
    """Stream ``url`` into ``incomplete``, resuming what is already there; retry within ``budget``."""
    def new_hasher() -> BlobHasher:
        return BlobHasher.for_etag(etag, size)

    bar = None
    try:
        with _open_partial(incomplete) as out:
            hasher = new_hasher()
            start = os.fstat(out.fileno()).st_size
            if size is not None and start > size:
                out.truncate(0)
                start = 0
            if start:
                logger.info("Resuming %s from byte %d", subject.describe(), start)
                hash_stream(out, hasher, CHUNK_BYTES)
            furthest, received, ignored_range = start, 0, 0  # for the budget's idea of progress, and the message
            budget.progress()
            bar = _progress_bar(subject.filename or incomplete.name, size, start)
            while size is None or start < size or start == 0:
                try:
                    reply = client.open_download(url, subject, token=token, timeout=settings.download_timeout(),
                                                 start=start, budget=budget)
                except client.RangeNotSatisfiable:
                    break  # nothing past `start`: the partial file is whole (or too long, which _check reports)
                response, source = reply.response, reply.url
                try:
                    if start:
                        whole = response.status_code != 206  # the server ignored the Range header
                        if whole or not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
                            ignored_range += whole
                            out.truncate(0)
                            if on_bytes:
                                on_bytes(-start)
                            if bar is not None:
                                bar.reset(total=size)
                            start, hasher = 0, new_hasher()
                            if not whole:
                                continue  # a range we did not ask for: ask again for everything
                    if size is None:
                        linked, length = reply.hub_headers.get("X-Linked-Size"), response.headers.get("Content-Length")
                        if linked and linked.isdigit():
                            size = int(linked)
                        elif length and length.isdigit() and not response.headers.get("Content-Encoding"):
                            size = int(length) + start
                        if bar is None:
                            bar = _progress_bar(subject.filename or incomplete.name, size, start)
                    # read1: whatever has arrived, so bytes received before a cut are kept for the resume
                    read = getattr(response.raw, "read1", None) or response.raw.read
                    while size is None or start <= size:  # a body longer than announced is cut short (and refused)
                        chunk = read(CHUNK_BYTES, decode_content=True)
                        if not chunk:
                            break
                        out.write(chunk)
                        hasher.update(chunk)
                        start += len(chunk)
                        received += len(chunk)
                        if start > furthest:
                            furthest = start
                            budget.progress()
                        elif budget.stalled():
                            raise ConnectionError(f"no new bytes for {budget.stall_s:g}s")
                        if on_bytes:
                            on_bytes(len(chunk))
                        if bar is not None:
                            bar.update(len(chunk))
                    if size is not None and start < size:
                        raise ConnectionError(f"the server closed the connection after {start} of {size} bytes")
                    break
                except client.STREAM_ERRORS as exc:
                    delay = budget.retry_delay(source, exc=exc)
                    if delay is None:
                        raise _gave_up(subject, budget, source, furthest, start, size, received,
                                       ignored_range, incomplete) from None
                    out.flush()
                    logger.warning("Download of %s from %s interrupted after %d bytes (%s); resuming in %.1fs",
                                   subject.describe(), client.host_of(source), start, client.failure_kind(exc), delay)
                    time.sleep(delay)
                finally:
                    response.close()
    finally:
        if bar is not None:
            bar.close()
    return start, hasher


def _gave_up(subject: client.Subject, budget: client.RetryBudget, source: str, furthest: int,
             kept: int, size: int | None, received: int, ignored_range: int, incomplete: Path) -> HubUnavailableError:
    of = f" of {size}" if size is not None else ""
    ranges = (f"; the server ignored the Range header {ignored_range} time(s) (it answered 200 to a resume, so the "
              f"download restarted from byte 0)" if ignored_range else "")
    error = HubUnavailableError(
        f"Gave up downloading {subject.describe()} from {client.host_of(source)}: {budget.summary()}; "
        f"{received} bytes received in all, the download never got past byte "
        f"{furthest}{of}{ranges}. The {kept} bytes kept in {incomplete.name} are resumed next time; try again later, "
        f"or set HF_HUB_OFFLINE=1 to use only files already in the cache"
    )
    error.repo_id, error.revision, error.filename = subject.repo_id, subject.revision, subject.filename  # type: ignore[attr-defined]
    return error
