"""HTTP for the hub client: one ``requests.Session``, retries, redirects, and the one place HTTP errors become zoo errors.

The protocol is the Hugging Face Hub's, as huggingface_hub uses it (``file_download.py``, ``hf_api.model_info``,
``utils/_http.py``):

- ``GET {endpoint}/api/models/{repo_id}/revision/{revision}?blobs=true`` -> ``{"sha": ..., "siblings": [{"rfilename",
  "size", "blobId", "lfs": {"sha256", "size"}}]}``: the commit and the whole file list in one request.
- ``HEAD|GET {endpoint}/{repo_id}/resolve/{revision}/{path}`` -> the file, or a redirect to a CDN for LFS files; the
  Hub's response carries ``X-Repo-Commit``, ``X-Linked-Etag`` / ``ETag`` and ``X-Linked-Size``.
- Failures carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``) and
  ``X-Error-Message``.

Redirects are followed here rather than by requests so the token goes only to the endpoint's own origin, never to a
CDN. 429, 5xx and dropped connections are retried with exponential backoff (honouring ``Retry-After``), under one
:class:`RetryBudget` per piece of work: a request, or a whole blob download across all its requests. What cannot
succeed by waiting is not retried: a host name that does not resolve, and a refused connection after one retry.
Tests swap the session with :func:`set_session`; tokens and signed query strings never reach a log line
(zoo.hub.redact).
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3

from zoo.errors import (
    AuthenticationError,
    EntryNotFoundError,
    GatedRepoError,
    HubError,
    HubUnavailableError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from zoo.hub import redact, settings
from zoo.hub.cache import COMMIT_RE, RemoteFile, RevisionInfo

logger = logging.getLogger(__name__)
redact.install()  # urllib3 logs request lines with their query at DEBUG: signed CDN URLs must not reach a handler

MAX_RETRIES = 5
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 10
USER_AGENT = "zoo-hub/0.1 (+requests)"

# What a dropped or stalled connection looks like while a body is streamed: worth resuming, not worth failing.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)
_CONNECT_ERRORS = (requests.ConnectionError, requests.Timeout)

_session: requests.Session | None = None
_session_pid: int | None = None
_session_lock = threading.Lock()


def _new_session() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def get_session() -> requests.Session:
    """The process's session (a new one after a fork, since sockets must not be shared across processes)."""
    global _session, _session_pid
    with _session_lock:
        if _session is None or _session_pid != os.getpid():
            _session, _session_pid = _new_session(), os.getpid()
        return _session


def set_session(session: requests.Session | None) -> None:
    """Replace the session every hub request goes through (``None``: a fresh default one on next use)."""
    global _session, _session_pid
    with _session_lock:
        _session, _session_pid = session, (os.getpid() if session is not None else None)


@dataclass
class Subject:
    """What a request was about, for error messages: repo, revision (and its commit), file, and the endpoint asked."""

    endpoint: str
    repo_id: str
    revision: str
    filename: str | None = None
    commit: str | None = None

    def describe(self) -> str:
        where = f"'{self.repo_id}' at revision '{self.revision}'"
        if self.commit and self.commit != self.revision:
            where += f" (commit {self.commit[:12]})"
        return f"'{self.filename}' of {where}" if self.filename else where


@dataclass
class Reply:
    """The final response of a request, plus the headers the endpoint itself sent before any off-site redirect."""

    response: requests.Response
    url: str
    hub_headers: dict[str, str] = field(default_factory=dict)


class _NoAuth(requests.auth.AuthBase):
    """Stops requests from adding ~/.netrc credentials to a request that must carry none."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _safe_url(url: str) -> str:
    """A URL fit for logs and messages: no query string (CDN URLs carry signatures there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def host_of(url: str) -> str:
    """``scheme://host:port`` of a URL: the server a message blames."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else parts.netloc or url


def _backoff(attempt: int, response: requests.Response | None) -> float:
    delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2 ** attempt))
    if response is not None:
        try:
            delay = min(BACKOFF_MAX_S, max(delay, float(response.headers.get("Retry-After", ""))))
        except ValueError:
            pass
    return delay


# --- the one bound on retries ---------------------------------------------------------------------------------------


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: requests and urllib3 nest the socket error in ``__cause__``, ``reason``, ``args``."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        e = todo.pop()
        if any(e is s for s in seen):
            continue
        seen.append(e)
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
                    if isinstance(x, BaseException))
    return seen


def failure_kind(exc: BaseException | None = None, response: requests.Response | None = None) -> str:
    """A short name for what went wrong, for retry decisions and for the message that reports them."""
    if response is not None:
        return f"HTTP {response.status_code}"
    assert exc is not None
    causes = _causes(exc)
    if any(isinstance(e, (socket.gaierror, urllib3.exceptions.NameResolutionError)) for e in causes):
        return "host name not resolved"
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return "connection refused"
    if any(isinstance(e, (requests.Timeout, TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError))
           for e in causes):
        return "timed out"
    return f"connection dropped ({type(exc).__name__})"


class RetryBudget:
    """How many more times one piece of work may be tried, and why the last tries failed.

    One budget covers every request of a piece of work: a metadata request, or a whole blob download with its
    resumes. It allows ``retries`` failures in a row *without progress*, and gives up once ``stall_s`` seconds have
    passed since the last progress, whatever the failures were (5xx, 429, cuts, timeouts, a server that ignores
    Range and restarts the body). Only the downloader knows what progress is (bytes past the furthest point reached),
    and says so with :meth:`progress`. Failures that waiting cannot fix end the work sooner: a host name that does not
    resolve is never retried, and a refused connection is retried once (a server restarting), not more.
    """

    REFUSED_RETRIES = 1

    def __init__(self, retries: int = MAX_RETRIES, stall_s: float | None = None) -> None:
        self.retries = retries
        self.stall_s = settings.stall_timeout() if stall_s is None else stall_s
        self.failures = 0  # in a row, since the last progress
        self.attempts = 0  # requests sent, in all
        self.kinds: Counter[str] = Counter()
        self.failed_url: str | None = None
        self.last_progress = time.monotonic()
        self.reason = ""  # why the budget ran out

    def progress(self) -> None:
        self.failures = 0
        self.last_progress = time.monotonic()

    def stalled(self) -> bool:
        return time.monotonic() - self.last_progress > self.stall_s

    def retry_delay(self, url: str, exc: BaseException | None = None,
                    response: requests.Response | None = None) -> float | None:
        """Record a failed try of ``url``; the seconds to wait before the next one, or None to give up."""
        kind = failure_kind(exc, response)
        self.failures += 1
        self.kinds[kind] += 1
        self.failed_url = url
        if kind == "host name not resolved":
            self.reason = "a host name that does not resolve is not retried"
        elif kind == "connection refused" and self.kinds[kind] > self.REFUSED_RETRIES:
            self.reason = f"a refused connection is retried {self.REFUSED_RETRIES} time(s), not more"
        elif self.failures > self.retries:
            self.reason = f"{self.failures} failures in a row without progress"
        elif self.stalled():
            self.reason = f"no progress for more than {self.stall_s:g}s (ZOO_STALL_TIMEOUT)"
        else:
            delay = _backoff(self.failures - 1, response)
            return max(0.0, min(delay, self.stall_s - (time.monotonic() - self.last_progress)))
        return None

    def summary(self) -> str:
        """``6 attempts (4 x connection dropped (...), 2 x HTTP 503); gave up: ...``"""
        what = ", ".join(f"{n} x {kind}" for kind, n in self.kinds.most_common())
        text = f"{self.attempts} attempt(s)" + (f" ({what})" if what else "")
        return text + (f"; gave up: {self.reason}" if self.reason else "")


# --- the one translation from HTTP failure to zoo error -------------------------------------------------------------


def hub_error(subject: Subject, response: requests.Response | None = None, exc: BaseException | None = None,
              attempts: int = 1, url: str | None = None, budget: RetryBudget | None = None) -> HubError:
    """The zoo error for a failed request: an HTTP error response, or a network exception.

    Every error names the repo, the revision and (where there is one) the file, the host that failed (the one of
    ``url``, or of the response: a CDN is not the Hub) and what was tried; and says what to do.
    """
    what = subject.describe()
    tried = budget.summary() if budget is not None else f"{attempts} attempt(s)"
    failed = url or (response.url if response is not None and response.url else None) or subject.endpoint
    host = host_of(failed)
    if response is None:
        reason = redact.redact(str(exc))  # signed CDN URLs stay out of messages
        kind = failure_kind(exc)
        server = "the Hub" if _origin(failed) == _origin(subject.endpoint) else "the server"
        error: HubError = HubUnavailableError(
            f"Could not reach {server} at {host} for {what}: {kind} ({type(exc).__name__}: {reason}); {tried}; "
            f"check the network and the endpoint (ZOO_ENDPOINT / HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use only "
            f"files already in the cache"
        )
    else:
        status = response.status_code
        code = response.headers.get("X-Error-Code", "")
        message = response.headers.get("X-Error-Message", "")
        detail = f"HTTP {status}" + (f": {message}" if message else "")
        sent_token = "Authorization" in response.request.headers if response.request is not None else False
        token_hint = ("the token sent was not accepted for it" if sent_token
                      else "no token was sent: pass token='hf_...' or set HF_TOKEN")
        if code == "GatedRepo":
            error = GatedRepoError(
                f"Repository '{subject.repo_id}' is gated ({detail}): accept its conditions at "
                f"{subject.endpoint}/{subject.repo_id} and pass a token of that account (token= or HF_TOKEN)"
            )
        elif code == "RepoNotFound" or (status == 404 and not code and subject.filename is None):
            error = RepoNotFoundError(
                f"Repository '{subject.repo_id}' was not found on {subject.endpoint} ({detail}); check the id, or if "
                f"it is private, {token_hint}"
            )
        elif code == "RevisionNotFound":
            error = RevisionNotFoundError(
                f"Repository '{subject.repo_id}' has no revision '{subject.revision}' ({detail}); pass an existing "
                f"branch, tag or full commit sha"
            )
        elif code == "EntryNotFound" or (status == 404 and not code):
            error = EntryNotFoundError(
                f"Repository '{subject.repo_id}' has no file '{subject.filename}' at revision '{subject.revision}' "
                f"({detail})"
            )
        elif status in (401, 403):
            error = AuthenticationError(
                f"{host} refused access to {what} ({detail}); {token_hint}, or check that the token "
                f"(token=, HF_TOKEN or `hf auth login`) has read access"
            )
        elif status in RETRY_STATUS:
            error = HubUnavailableError(
                f"{host} answered {detail} for {what}; {tried}; try again later, or set HF_HUB_OFFLINE=1 to use only "
                f"files already in the cache"
            )
        else:
            error = HubError(f"{host} answered {detail} for {what} ({_safe_url(failed)})")
        error.status_code = status  # type: ignore[attr-defined]
        error.commit = response.headers.get("X-Repo-Commit")  # type: ignore[attr-defined]
    error.repo_id, error.revision, error.filename = subject.repo_id, subject.revision, subject.filename  # type: ignore[attr-defined]
    return error


# --- requests -------------------------------------------------------------------------------------------------------


def request(method: str, url: str, subject: Subject, *, token: str | None, timeout: float,
            headers: dict[str, str] | None = None, params: dict[str, str] | None = None, stream: bool = False,
            retries: int = MAX_RETRIES, follow_offsite: bool = True, budget: RetryBudget | None = None) -> Reply:
    """Send a request with retries; follow redirects, sending the token only to the endpoint's origin.

    Raises the zoo error for any final status >= 400. With ``follow_offsite=False`` a redirect to another host is
    returned as is (its headers are the file's metadata), which is what a HEAD for metadata wants. ``budget``: the
    retry budget of a larger piece of work this request is part of (default: a fresh one of ``retries``).
    """
    session = get_session()
    endpoint_origin = _origin(subject.endpoint)
    budget = budget if budget is not None else RetryBudget(retries)
    while True:
        hub_headers: dict[str, str] = {}
        current, current_params = url, params
        budget.attempts += 1  # one try, redirects included
        try:
            for _ in range(MAX_REDIRECTS + 1):
                send_headers = dict(headers or {})
                on_endpoint = _origin(current) == endpoint_origin
                if token and on_endpoint:
                    send_headers["Authorization"] = f"Bearer {token}"
                logger.debug("%s %s", method, _safe_url(current))
                response = session.request(
                    method, current, headers=send_headers, params=current_params, stream=stream,
                    allow_redirects=False, timeout=(timeout, timeout), auth=None if on_endpoint else _NoAuth(),
                )
                current_params = None  # a redirect's Location already carries its query
                if on_endpoint:
                    hub_headers.update({k: v for k, v in response.headers.items() if k.lower().startswith("x-")
                                        or k.lower() in ("etag", "content-length", "location")})
                location = response.headers.get("Location")
                if not (response.is_redirect and location):
                    break
                target = urljoin(current, location)
                if not follow_offsite and _origin(target) != endpoint_origin:
                    return Reply(response, target, hub_headers)
                response.close()
                current = target
            else:
                raise HubError(f"More than {MAX_REDIRECTS} redirects for {subject.describe()} ({_safe_url(url)})")
        except _CONNECT_ERRORS as exc:
            delay = budget.retry_delay(current, exc=exc)
            if delay is None:
                raise hub_error(subject, exc=exc, url=current, budget=budget) from None
            logger.info("%s from %s for %s; retrying in %.1fs", failure_kind(exc), host_of(current),
                        subject.describe(), delay)
        else:
            if response.status_code < 400:
                return Reply(response, current, hub_headers)
            delay = budget.retry_delay(current, response=response) if response.status_code in RETRY_STATUS else None
            if delay is None:
                error = hub_error(subject, response=response, url=current, budget=budget)
                response.close()
                raise error
            logger.info("HTTP %d from %s for %s; retrying in %.1fs", response.status_code, host_of(current),
                        subject.describe(), delay)
            response.close()
        time.sleep(delay)


def resolve_url(endpoint: str, repo_id: str, revision: str, filename: str) -> str:
    return f"{endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"


def fetch_revision(subject: Subject, *, token: str | None, timeout: float, retries: int = MAX_RETRIES) -> RevisionInfo:
    """The commit of ``subject.revision`` and its file list, in one request."""
    url = f"{subject.endpoint}/api/models/{subject.repo_id}/revision/{quote(subject.revision, safe='')}"
    reply = request("GET", url, subject, token=token, timeout=timeout, params={"blobs": "true"}, retries=retries)
    try:
        data = reply.response.json()
        commit = data["sha"]
        siblings = data.get("siblings")
    except (ValueError, KeyError, TypeError):
        raise HubError(f"{subject.endpoint} did not answer the revision lookup of {subject.describe()} with Hub "
                       f"JSON (a 'sha' field); check that ZOO_ENDPOINT / HF_ENDPOINT points to a Hub") from None
    if not isinstance(commit, str) or not COMMIT_RE.match(commit):
        raise HubError(f"{subject.endpoint} gave {commit!r} as the commit of {subject.describe()}; expected 40 hex digits")
    files: dict[str, RemoteFile] | None = None
    if isinstance(siblings, list):
        files = {}
        for s in siblings:
            if not isinstance(s, dict) or not isinstance(s.get("rfilename"), str):
                continue
            lfs = s.get("lfs") if isinstance(s.get("lfs"), dict) else None
            size = (lfs or {}).get("size", s.get("size"))
            files[s["rfilename"]] = RemoteFile(
                path=s["rfilename"],
                size=size if isinstance(size, int) else None,
                blob_id=s.get("blobId") if isinstance(s.get("blobId"), str) else None,
                lfs_sha256=(lfs or {}).get("sha256") if isinstance((lfs or {}).get("sha256"), str) else None,
            )
    logger.debug("%s -> commit %s (%s files)", subject.describe(), commit, "?" if files is None else len(files))
    return RevisionInfo(commit, files)


@dataclass(frozen=True)
class FileMetadata:
    commit: str | None
    etag: str | None
    size: int | None
    location: str


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def normalize_etag(value: str | None) -> str | None:
    if not value:
        return None
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def fetch_file_metadata(subject: Subject, *, token: str | None, timeout: float) -> FileMetadata:
    """``HEAD .../resolve/...``: the commit, etag, size and download location of one file (for servers whose
    revision listing lacks blob ids)."""
    assert subject.filename is not None
    url = resolve_url(subject.endpoint, subject.repo_id, subject.commit or subject.revision, subject.filename)
    reply = request("HEAD", url, subject, token=token, timeout=timeout, headers={"Accept-Encoding": "identity"},
                    follow_offsite=False)
    h = reply.hub_headers
    final = reply.response.headers
    redirected = reply.response.is_redirect
    return FileMetadata(
        commit=h.get("X-Repo-Commit") or final.get("X-Repo-Commit"),
        etag=normalize_etag(h.get("X-Linked-Etag") or final.get("X-Linked-Etag") or final.get("ETag")),
        size=_int(h.get("X-Linked-Size") or final.get("X-Linked-Size")
                  or (None if redirected else final.get("Content-Length"))),
        location=reply.url,
    )


def open_download(url: str, subject: Subject, *, token: str | None, timeout: float, start: int = 0,
                  budget: RetryBudget | None = None) -> Reply:
    """Start streaming a file (from byte ``start`` with a Range request); the caller reads ``reply.response.raw``."""
    headers = {"Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return request("GET", url, subject, token=token, timeout=timeout, headers=headers, stream=True,
                       budget=budget)
    except HubError as exc:
        if getattr(exc, "status_code", None) == 416:
            raise RangeNotSatisfiable() from None
        raise


class RangeNotSatisfiable(Exception):
    """The server has no bytes past ``start``: the partial download may already be whole."""
