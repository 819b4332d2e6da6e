"""Getting one blob into the cache safely: lock, ``.incomplete``, resume, verify, atomic rename.

After huggingface_hub's ``_download_to_tmp_and_move`` and ``http_get``, with two differences: the partial file is
``blobs/<etag>.incomplete`` under a per-blob filelock (the lock file is the one huggingface_hub takes, so the two
libraries never write one blob at once), which lets an interrupted download resume with an HTTP Range request; and
every blob is verified before it is renamed into place: its size, and its sha256 (LFS files) or git blob sha1 (the
others). A download that is cut, short or corrupt therefore never appears in ``blobs/`` or ``snapshots/``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from zoo.errors import CorruptDownloadError
from zoo.hub import client, settings
from zoo.hub.cache import BlobHasher, RepoCache, hash_file

logger = logging.getLogger(__name__)

CHUNK_BYTES = 4 << 20
LARGE_FILE_BYTES = 8 << 20  # files at least this big get a progress bar of their own


def _progress_bar(name: str, total: int | None, initial: int):
    if not settings.progress_bars_enabled() or (total is not None and total < LARGE_FILE_BYTES):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name[-40:], unit="B", unit_scale=True, unit_divisor=1024,
                leave=False)


def download_to_blob(cache: RepoCache, etag: str, url: str, subject: client.Subject, *, token: str | None,
                     size: int | None, verify: bool, force: bool = False,
                     on_bytes: Callable[[int], None] | None = None) -> Path:
    """Make ``blobs/<etag>`` hold the file at ``url``, downloading it unless it is there; returns the blob path.

    ``verify``: check the bytes against the etag (sha256, or git blob sha1 when the etag is a git id); ``size`` is
    always checked when known. Only one process or thread downloads a given blob at a time.
    """
    blob = cache.blob_path(etag)
    lock = cache.lock_path(etag)
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), mode=0o664):
        if blob.is_file() and not force:
            return blob  # another process finished it while we waited for the lock
        incomplete = blob.with_name(f"{etag}.incomplete")
        if force:
            incomplete.unlink(missing_ok=True)
        for fresh_start in (False, True):
            written, hasher = _fetch(incomplete, url, subject, token=token, size=size, etag=etag if verify else None,
                                     on_bytes=on_bytes)
            problem = _check(written, hasher, size)
            if problem is None:
                break
            incomplete.unlink(missing_ok=True)
            if on_bytes:
                on_bytes(-written)  # the overall progress bar counts the bytes again
            if fresh_start:
                raise CorruptDownloadError(
                    f"Downloaded {subject.describe()} ({_safe(url)}), but {problem}; nothing was written to the "
                    f"cache. Retry; if it happens again the server holds a damaged copy"
                )
            logger.warning("Discarding a bad download of %s (%s); downloading it again from the start",
                           subject.describe(), problem)
        os.replace(incomplete, blob)
        cache.tag_cache_root()
    logger.debug("Stored %s as %s", subject.describe(), blob)
    return blob


def _safe(url: str) -> str:
    return url.split("?", 1)[0]


def _check(written: int, hasher: BlobHasher, size: int | None) -> str | None:
    if size is not None and written != size:
        return f"it is {written} bytes where {size} were announced"
    if not hasher.matches():
        return f"its {hasher.kind} is {hasher.hexdigest()} where {hasher.expected} was announced"
    return None


def _fetch(incomplete: Path, url: str, subject: client.Subject, *, token: str | None, size: int | None,
           etag: str | None, on_bytes: Callable[[int], None] | None) -> tuple[int, BlobHasher]:
    """Stream ``url`` into ``incomplete``, resuming what is already there; retry dropped connections."""
    def new_hasher() -> BlobHasher:
        return BlobHasher.for_etag(etag, size) if etag else BlobHasher(None, None, size)

    start = incomplete.stat().st_size if incomplete.is_file() else 0
    if size is not None and start > size:
        incomplete.unlink()
        start = 0
    hasher = new_hasher()
    if start:
        logger.info("Resuming %s from byte %d", subject.describe(), start)
        hash_file(incomplete, hasher)
    failures = 0
    bar = _progress_bar(subject.filename or incomplete.name, size, start)
    try:
        with open(incomplete, "ab") as out:
            while size is None or start < size or start == 0:
                try:
                    reply = client.open_download(url, subject, token=token, timeout=settings.download_timeout(),
                                                 start=start)
                except client.RangeNotSatisfiable:
                    break  # nothing past `start`: the partial file is whole (or too long, which _check reports)
                response = reply.response
                try:
                    if start:
                        whole = response.status_code != 206  # the server ignored the Range header
                        if whole or not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
                            out.seek(0)
                            out.truncate()
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
                    while True:
                        chunk = read(CHUNK_BYTES, decode_content=True)
                        if not chunk:
                            break
                        out.write(chunk)
                        hasher.update(chunk)
                        start += len(chunk)
                        failures = 0
                        if on_bytes:
                            on_bytes(len(chunk))
                        if bar is not None:
                            bar.update(len(chunk))
                    if size is not None and start < size:
                        raise ConnectionError(f"the server closed the connection after {start} of {size} bytes")
                    break
                except client.STREAM_ERRORS as exc:
                    failures += 1
                    if failures > client.MAX_RETRIES:
                        raise client.hub_error(subject, exc=exc, attempts=failures) from None
                    out.flush()
                    delay = client._backoff(failures - 1, None)
                    logger.warning("Download of %s interrupted after %d bytes (%s); resuming in %.1fs",
                                   subject.describe(), start, type(exc).__name__, delay)
                    time.sleep(delay)
                finally:
                    response.close()
    finally:
        if bar is not None:
            bar.close()
    return start, hasher
