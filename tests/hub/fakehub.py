"""A Hugging Face Hub on loopback, for tests and benchmarks: the HTTP protocol huggingface_hub and zoo speak.

Two ``ThreadingHTTPServer`` s: the Hub (``http://127.0.0.1:<port>``: API and ``resolve``) and a CDN on another host
(``http://127.0.0.2:<port>``) that LFS files redirect to, as the real Hub redirects to its CDN. Implemented:

- ``GET /api/models/{repo}[/revision/{rev}][?blobs=true]``: id, sha, private, gated, siblings (with ``size``,
  ``blobId`` and ``lfs`` when ``blobs=true``), as ``HfApi.model_info`` reads it;
- ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=true``: the file list ``snapshot_download`` reads;
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``: small files directly (``ETag`` = git blob sha1), LFS files as a 302 to
  the CDN with ``X-Linked-Etag`` (sha256) and ``X-Linked-Size``; ``X-Repo-Commit`` on every answer;
- errors with ``X-Error-Code``: RepoNotFound (404, or 401 for a private repo without a valid token), GatedRepo (403),
  RevisionNotFound, EntryNotFound (404); a token that no repo knows: 401 "Invalid credentials in Authorization header";
- ``Range: bytes=N-`` (206) on both hosts; renamed repos (307 to the new name on the same host);
- a log of every request (host, method, path, headers) and fault injection: error statuses, connections cut
  mid-body, resets, delays, stalls mid-body, corrupt bodies, wrong Content-Length, ignored Range headers, and
  revision listings rewritten (``listing``) or without hashes (``FakeHub.listing_hashes = False``, as a server
  whose listing has no blob ids, which makes clients ask with a HEAD per file).

Use it from any test::

    from tests.hub.fakehub import FakeHub

    with FakeHub() as hub:                      # or the `fake_hub` fixture of tests/hub/conftest.py
        sha = hub.add_repo("org/name", {"config.json": b"{}", "model.safetensors": big_bytes})
        hub.add_folder("org/bert", "/path/to/saved/model")     # serve a save_pretrained folder
        os.environ["ZOO_ENDPOINT"] = hub.endpoint              # or HF_ENDPOINT for huggingface_hub
        ...
        assert hub.count(host="hub") == 1 and not any("Authorization" in r.headers for r in hub.log("cdn"))

Fixtures (``fake_hub``, ``hub_env``) live in tests/hub/conftest.py; other test folders can import them with
``from tests.hub.conftest import fake_hub, hub_env  # noqa: F401``. ``hub_env`` points zoo (ZOO_ENDPOINT) at the
fake hub and the cache (HF_HUB_CACHE) at a temporary folder, with no token, not offline, no progress bars.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".ckpt", ".gguf")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeFile:
    path: str
    size: int
    source: bytes | Path
    lfs: bool
    sha256: str | None  # LFS files only
    oid: str  # git blob sha1 of the content, or of the LFS pointer for LFS files

    @classmethod
    def make(cls, path: str, source: bytes | str | Path, lfs_threshold: int) -> FakeFile:
        if isinstance(source, str):
            source = source.encode()
        if isinstance(source, Path):
            size = source.stat().st_size
            h = hashlib.sha256()
            with open(source, "rb") as f:
                while chunk := f.read(8 << 20):
                    h.update(chunk)
            data_for_git = None if size >= lfs_threshold or path.endswith(LFS_SUFFIXES) else source.read_bytes()
            sha256 = h.hexdigest()
        else:
            size, sha256, data_for_git = len(source), hashlib.sha256(source).hexdigest(), source
        lfs = size >= lfs_threshold or path.endswith(LFS_SUFFIXES)
        if lfs:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
            return cls(path, size, source, True, sha256, git_blob_sha1(pointer))
        assert data_for_git is not None
        return cls(path, size, source, False, None, git_blob_sha1(data_for_git))

    @property
    def pointer_size(self) -> int:
        return len(f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n")

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.source, bytes):
            return self.source[start:end]
        with open(self.source, "rb") as f:
            f.seek(start)
            return f.read(end - start)


@dataclass
class FakeRepo:
    repo_id: str
    private: bool = False
    gated: bool = False
    tokens: set[str] = field(default_factory=set)  # tokens allowed to read a private or gated repo
    commits: dict[str, dict[str, FakeFile]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


@dataclass
class LoggedRequest:
    host: str  # "hub" or "cdn"
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class Fault:
    kind: str  # status | cut | reset | delay | stall | corrupt | length | ignore_range | listing
    host: str | None
    method: str | None
    path: str | None  # substring of the request path
    times: int
    params: dict[str, Any]

    def matches(self, host: str, method: str, path: str) -> bool:
        return ((self.host is None or self.host == host) and (self.method is None or self.method == method)
                and (self.path is None or self.path in unquote(path)))


class FakeHub:
    """The fake Hub and its CDN. ``start()`` / ``stop()`` (or ``with``); ``endpoint`` is the Hub's URL."""

    def __init__(self, host: str = "127.0.0.1", cdn_host: str = "127.0.0.2", lfs_threshold: int = 1 << 20) -> None:
        self.host, self.cdn_host, self.lfs_threshold = host, cdn_host, lfs_threshold
        self.repos: dict[str, FakeRepo] = {}
        self.renamed: dict[str, str] = {}
        self.blobs: dict[str, FakeFile] = {}  # sha256 -> file, what the CDN serves
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._servers: list[ThreadingHTTPServer] = []
        self._connections: set[socket.socket] = set()
        self.listing_hashes = True  # False: revision listings carry no size/blobId/lfs even when asked (?blobs=true)
        self.endpoint = ""
        self.cdn_url = ""

    # --- content --------------------------------------------------------------------------------------------------

    def add_repo(self, repo_id: str, files: dict[str, bytes | str | Path], *, branch: str = "main",
                 tags: tuple[str, ...] = (), private: bool = False, gated: bool = False,
                 tokens: tuple[str, ...] = ()) -> str:
        """Create (or update) a repo and commit ``files`` as the whole new tree of ``branch``; returns the commit."""
        repo = self.repos.get(repo_id)
        if repo is None:
            repo = self.repos[repo_id] = FakeRepo(repo_id, private=private, gated=gated, tokens=set(tokens))
        return self.commit(repo_id, files, branch=branch, tags=tags)

    def commit(self, repo_id: str, files: dict[str, bytes | str | Path], *, branch: str = "main",
               tags: tuple[str, ...] = ()) -> str:
        repo = self.repos[repo_id]
        tree = {path: FakeFile.make(path, src, self.lfs_threshold) for path, src in files.items()}
        with self._lock:
            self._counter += 1
            seed = json.dumps([repo_id, self._counter, sorted((p, f.oid) for p, f in tree.items())]).encode()
        sha = hashlib.sha1(seed).hexdigest()
        repo.commits[sha] = tree
        repo.refs[branch] = sha
        for tag in tags:
            repo.refs[tag] = sha
        for f in tree.values():
            if f.lfs:
                self.blobs[f.sha256] = f  # type: ignore[index]
        return sha

    def add_folder(self, repo_id: str, folder: str | os.PathLike[str], **kwargs: Any) -> str:
        """Serve every file under ``folder`` (e.g. a ``save_pretrained`` output) as a repo; returns the commit."""
        root = Path(folder)
        files: dict[str, bytes | str | Path] = {
            p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts
        }
        return self.add_repo(repo_id, files, **kwargs)

    def rename(self, old: str, new: str) -> None:
        """Requests for ``old`` get a 307 to ``new`` on the same host, as the Hub does for renamed repos."""
        self.renamed[old] = new

    # --- faults and the request log -------------------------------------------------------------------------------

    def inject(self, kind: str, *, host: str | None = None, method: str | None = None, path: str | None = None,
               times: int = 1, **params: Any) -> Fault:
        """Make the next ``times`` matching requests fail. Kinds and their parameters:

        ``status`` (``code``, ``headers``): answer with that status; ``cut`` (``after`` bytes): send the headers and
        that much body, then drop the connection; ``reset``: drop the connection before answering; ``delay``
        (``seconds``): wait, then answer normally; ``stall`` (``after`` bytes, ``seconds``): send that much body,
        go silent for ``seconds``, then drop the connection; ``corrupt``: flip one byte of the body (of a
        revision listing too: it is then not JSON); ``length`` (``delta``): announce a Content-Length ``delta``
        bytes off, send the real body, then drop the connection; ``ignore_range``: answer 200 with the whole file
        even when a Range was asked; ``listing`` (``edit``: a function of the revision JSON returning the JSON to
        send): rewrite a revision listing.
        """
        fault = Fault(kind, host, method, path, times, params)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, host: str, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.times > 0 and fault.matches(host, method, path):
                    fault.times -= 1
                    return fault
        return None

    def log(self, host: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if host is None or r.host == host]

    def count(self, host: str | None = None, method: str | None = None, path: str | None = None) -> int:
        return sum(1 for r in self.log(host) if (method is None or r.method == method)
                   and (path is None or path in unquote(r.path)))

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> FakeHub:
        hub_server = self._serve(self.host, "hub")
        cdn_server = self._serve(self.cdn_host, "cdn")
        self.endpoint = f"http://{self.host}:{hub_server.server_address[1]}"
        self.cdn_url = f"http://{self.cdn_host}:{cdn_server.server_address[1]}"
        return self

    def stop(self) -> None:
        """Stop both servers and drop open connections: afterwards every request is refused."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._servers.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, host: str, role: str) -> ThreadingHTTPServer:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub, Handler.role = hub, role
        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name=f"fakehub-{role}").start()
        self._servers.append(server)
        return server

    # --- routing --------------------------------------------------------------------------------------------------

    def check_access(self, repo: FakeRepo, auth: str | None) -> tuple[int, dict[str, str]] | None:
        token = auth[7:] if auth and auth.startswith("Bearer ") else None
        known = set().union(*(r.tokens for r in self.repos.values())) if self.repos else set()
        if token is not None and token not in known:
            return 401, {"X-Error-Message": "Invalid credentials in Authorization header"}
        if repo.private and token not in repo.tokens:
            return 401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Invalid username or password."}
        if repo.gated and token not in repo.tokens:
            return 403, {"X-Error-Code": "GatedRepo",
                         "X-Error-Message": f"Access to model {repo.repo_id} is restricted."}
        return None


def _split_repo(parts: list[str], keyword: str) -> tuple[str, list[str]] | None:
    """``[org, name, keyword, ...]`` or ``[name, keyword, ...]`` -> (repo_id, rest after keyword)."""
    for n in (2, 1):
        if len(parts) > n and parts[n] == keyword:
            return "/".join(parts[:n]), parts[n + 1:]
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub
    role: str

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.hub._lock:
                self.hub._connections.discard(self.connection)

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_GET(self) -> None:
        self._handle("GET")

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        entry = LoggedRequest(self.role, method, url.path, url.query, {k: v for k, v in self.headers.items()})
        with self.hub._lock:
            self.hub.requests.append(entry)
        self._entry = entry
        hub = self.hub
        if hub._take_fault(self.role, method, url.path, ("reset",)):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        delay = hub._take_fault(self.role, method, url.path, ("delay",))
        if delay:
            time.sleep(delay.params.get("seconds", 1.0))
        fault = hub._take_fault(self.role, method, url.path, ("status",))
        if fault:
            code = fault.params.get("code", 503)
            self._reply(code, {"X-Error-Message": "injected", **fault.params.get("headers", {})},
                        b"injected failure")
            return
        try:
            if self.role == "cdn":
                self._cdn(method, url.path, parse_qs(url.query))
            else:
                self._hub(method, url.path, parse_qs(url.query))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _reply(self, status: int, headers: dict[str, str], body: bytes = b"", method: str = "GET") -> None:
        self._entry.status = status
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **headers}
        for k, v in headers.items():
            self.send_header(k, v.encode("latin-1", "backslashreplace").decode("latin-1"))  # as HTTP allows
        self.end_headers()
        if method != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None, method: str = "GET") -> None:
        self._reply(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode(), method)

    def _error(self, status: int, code: str | None, message: str, method: str,
               extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers, method)

    def _send_file(self, method: str, f: FakeFile, headers: dict[str, str], path: str) -> None:
        """Serve ``f`` with Range support and the content faults (cut, corrupt, ignore_range)."""
        hub = self.hub
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and not hub._take_fault(self.role, method, path, ("ignore_range",)):
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m.group(1))
                if start >= f.size and f.size > 0:
                    self._reply(416, {"Content-Range": f"bytes */{f.size}"}, b"", method)
                    return
                status = 206
        end = f.size
        if rng and status == 206 and re.fullmatch(r"bytes=(\d+)-(\d+)", rng.strip()):
            end = min(f.size, int(rng.split("-")[1]) + 1)
        self._entry.status = status
        self.send_response(status)
        wrong_length = hub._take_fault(self.role, method, path, ("length",)) if method != "HEAD" else None
        length = end - start + (int(wrong_length.params.get("delta", 1)) if wrong_length is not None else 0)
        self.send_header("Content-Length", str(max(0, length)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{f.size}")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if method == "HEAD":
            return
        cut = hub._take_fault(self.role, method, path, ("cut", "stall"))
        corrupt = hub._take_fault(self.role, method, path, ("corrupt",))
        stop = end if cut is None else min(end, start + int(cut.params.get("after", 0)))
        if corrupt is not None or cut is not None or isinstance(f.source, bytes):
            data = bytearray(f.read(start, stop))
            if corrupt is not None and data:
                data[len(data) // 2] ^= 0xFF
            self.wfile.write(data)
        else:
            with open(f.source, "rb") as fh:
                self.connection.sendfile(fh, offset=start, count=stop - start)
        if cut is not None or wrong_length is not None:
            self.wfile.flush()
            if cut is not None and cut.kind == "stall":
                time.sleep(float(cut.params.get("seconds", 1.0)))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --- the CDN ----------------------------------------------------------------------------------------------------

    def _cdn(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        sha = path.rsplit("/", 1)[-1]
        f = self.hub.blobs.get(sha)
        if f is None or "X-Amz-Signature" not in query:
            self._reply(403, {"Content-Type": "text/plain"}, b"AccessDenied", method)
            return
        headers = {"ETag": f'"{sha}"', "Content-Type": "application/octet-stream",
                   "Content-Disposition": f'inline; filename="{Path(f.path).name}";'}
        self._send_file(method, f, headers, path)

    # --- the Hub ------------------------------------------------------------------------------------------------------

    def _hub(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        hub = self.hub
        parts = [unquote(p) for p in path.strip("/").split("/")]
        for old, new in hub.renamed.items():
            old_path = "/" + quote(old) + "/"
            for prefix in ("/api/models", ""):
                if path.startswith(prefix + old_path):
                    location = prefix + "/" + quote(new) + "/" + path[len(prefix + old_path):]
                    self._reply(307, {"Location": location + (f"?{urlsplit(self.path).query}" if query else "")},
                                b"", method)
                    return
        if parts[:2] == ["api", "models"]:
            self._api(method, parts[2:], query)
            return
        split = _split_repo(parts, "resolve")
        if split is None or not split[1]:
            self._error(404, None, "Not Found", method)
            return
        repo_id, rest = split
        self._resolve(method, repo_id, rest[0], "/".join(rest[1:]), path)

    def _find(self, repo_id: str, method: str) -> FakeRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", method)
            return None
        denied = self.hub.check_access(repo, self.headers.get("Authorization"))
        if denied:
            status, headers = denied
            self._error(status, headers.get("X-Error-Code"), headers["X-Error-Message"], method,
                        {k: v for k, v in headers.items() if k not in ("X-Error-Code", "X-Error-Message")})
            return None
        return repo

    def _api(self, method: str, parts: list[str], query: dict[str, list[str]]) -> None:
        for keyword in ("revision", "tree"):
            split = _split_repo(parts, keyword)
            if split is not None:
                break
        else:
            if not parts or len(parts) > 2:
                self._error(404, None, "Not Found", method)
                return
            split, keyword = ("/".join(parts), ["main"]), "revision"
        repo_id, rest = split
        repo = self._find(repo_id, method)
        if repo is None:
            return
        revision = rest[0] if rest else "main"
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", method)
            return
        tree = repo.commits[commit]
        if keyword == "tree":
            prefix = "/".join(rest[1:])
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            self._json(200, _tree_entries(tree, prefix, recursive), method=method)
            return
        blobs = query.get("blobs", ["false"])[0].lower() == "true" and self.hub.listing_hashes
        siblings = []
        for name in sorted(tree):
            f = tree[name]
            sib: dict[str, Any] = {"rfilename": name}
            if blobs:
                sib.update(size=f.size, blobId=f.oid)
                if f.lfs:
                    sib["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
            siblings.append(sib)
        data: Any = {"_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": commit, "private": repo.private,
                     "gated": "auto" if repo.gated else False, "disabled": False, "tags": [],
                     "lastModified": "2024-01-01T00:00:00.000Z", "siblings": siblings}
        path = self._entry.path
        listing = self.hub._take_fault(self.role, method, path, ("listing",))
        if listing is not None:
            data = listing.params["edit"](data)
        if self.hub._take_fault(self.role, method, path, ("corrupt",)):
            body = bytearray(json.dumps(data).encode())
            body[len(body) // 2] ^= 0xFF
            self._reply(200, {"Content-Type": "application/json"}, bytes(body), method)
            return
        self._json(200, data, method=method)

    def _resolve(self, method: str, repo_id: str, revision: str, filename: str, path: str) -> None:
        repo = self._find(repo_id, method)
        if repo is None:
            return
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", method)
            return
        f = repo.commits[commit].get(filename)
        if f is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on \"{revision}\"", method,
                        {"X-Repo-Commit": commit})
            return
        if f.lfs:
            location = f"{self.hub.cdn_url}/repos/{f.sha256[:2]}/{f.sha256}?X-Amz-Signature=fake{commit[:8]}"
            self._reply(302, {"Location": location, "X-Repo-Commit": commit, "X-Linked-Etag": f'"{f.sha256}"',
                              "X-Linked-Size": str(f.size), "ETag": f'"{f.oid}"', "Content-Type": "text/plain"},
                        b"", method)
            return
        self._send_file(method, f, {"ETag": f'"{f.oid}"', "X-Repo-Commit": commit,
                                    "Content-Type": "application/octet-stream"}, path)


def _tree_entries(tree: dict[str, FakeFile], prefix: str, recursive: bool) -> list[dict[str, Any]]:
    base = prefix.rstrip("/") + "/" if prefix else ""
    out: list[dict[str, Any]] = []
    folders: set[str] = set()
    for name in sorted(tree):
        if not name.startswith(base):
            continue
        rest = name[len(base):]
        if "/" in rest:
            dirs = rest.split("/")[:-1] if recursive else rest.split("/")[:1]
            for i in range(len(dirs)):
                folders.add(base + "/".join(dirs[: i + 1]))
            if not recursive:
                continue
        f = tree[name]
        entry: dict[str, Any] = {"type": "file", "oid": f.oid, "size": f.size, "path": name}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
        out.append(entry)
    out.extend({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
               for d in sorted(folders))
    return out


def serve_forever(repos: dict[str, dict[str, bytes | str | Path]], **kwargs: Any) -> FakeHub:  # pragma: no cover
    """Start a FakeHub with ``repos`` (for manual experiments: ``python -c``); call ``.stop()`` when done."""
    hub = FakeHub(**kwargs).start()
    for repo_id, files in repos.items():
        hub.add_repo(repo_id, files)
    return hub

