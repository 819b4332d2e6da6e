"""Properties of the hub client against the loopback fake Hub (tests/hub/fakehub.py), over (a) the file names and
revisions a server lists and (b) what a server does while it answers: cuts at any offset, ignored Range headers,
wrong Content-Length, wrong hashes and sizes in the listing, 5xx/429 bursts, resets, stalls before and during a body.

The property: each call returns the file with exactly the bytes the repo holds, or raises a ZooError whose message
names what was asked (the file or the repo), within a time bounded by the configured timeouts and retry budget; and
the cache is left sound: nothing written outside it, every blob hashes to its name, every snapshot entry links to
such a blob of its own repo.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.hub.conftest import fake_hub  # noqa: F401
from tests.hub.fakehub import FakeHub
from zoo import hub
from zoo.errors import ZooError
from zoo.hub import client
from zoo.hub.cache import BlobHasher
from zoo.hub.repo import forget_lookups

TIMEOUT_S = 0.15  # per request (connect, and each read): a stall costs about this much
STALL_S = 2.0  # a download with no progress for this long gives up
_ids = itertools.count()


@pytest.fixture
def fuzz_env(fake_hub, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("ZOO_ENDPOINT", fake_hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", str(TIMEOUT_S))
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", str(TIMEOUT_S))
    monkeypatch.setenv("ZOO_STALL_TIMEOUT", str(STALL_S))
    for name in ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "ZOO_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.0)
    monkeypatch.setattr(client, "BACKOFF_MAX_S", 0.0)
    client.set_session(None)
    yield fake_hub, tmp_path
    client.set_session(None)
    forget_lookups()


def fresh_example(fake: FakeHub, tmp_path: Path) -> tuple[str, Path, Path]:
    """A new repo id and an empty cache (inside a folder that must stay otherwise empty) for one example."""
    with fake._lock:
        fake.faults.clear()
    fake.listing_hashes = True
    forget_lookups()
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    return f"fuzz/repo-{next(_ids)}", base / "cache", base


def names_the_input(message: str, *inputs: str) -> bool:
    for text in inputs:
        if text in message or repr(text) in message or repr(text)[:40] in message:
            return True
    return False


def assert_cache_is_sound(root: Path, base: Path) -> None:
    """Nothing outside ``root`` (in ``base``), every blob hashes to its name, every snapshot entry leads to a blob."""
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = Path(folder) / name
            assert path == root or root in path.parents, f"written outside the cache: {path}"
    for repo in root.glob("models--*"):
        blobs = repo / "blobs"
        for blob in blobs.iterdir() if blobs.is_dir() else []:
            assert not blob.is_symlink(), blob
            if blob.name.endswith((".incomplete", ".lock")):
                continue
            hasher = BlobHasher.for_etag(blob.name, blob.stat().st_size)
            assert hasher.kind is not None, f"a blob not named by its hash: {blob}"
            hasher.update(blob.read_bytes())
            assert hasher.matches(), f"corrupt blob {blob}: {hasher.kind} {hasher.hexdigest()}"
        for entry in (repo / "snapshots").rglob("*") if (repo / "snapshots").is_dir() else []:
            if entry.is_dir() and not entry.is_symlink():
                continue
            assert entry.is_symlink(), f"a snapshot entry that is not a link: {entry}"
            target = Path(os.path.realpath(entry))
            assert target.parent == Path(os.path.realpath(blobs)) and target.is_file(), f"{entry} -> {target}"


# --- (a) names and revisions from the server ------------------------------------------------------------------------

_plain = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
_component = st.one_of(
    _plain, _plain, _plain,  # mostly names a file system holds, so that some snapshots succeed
    st.sampled_from(["..", ".", "", "a" * 300, "é" * 130, "x" * 255, "con", "a b", "%2e%2e", "q?x=1", "#frag",
                     "~", "\\", "C:", "\0", " "]),
)
_name = st.one_of(
    st.lists(_component, min_size=1, max_size=4).map("/".join),
    st.sampled_from(["/etc/passwd", "../escape.txt", "a/../../b", "./a", "a//b", "a/", "C:/x", "a\\..\\b"]),
)


@st.composite
def _listings(draw):
    names = draw(st.lists(_name, min_size=1, max_size=5, unique=True))
    if draw(st.booleans()):  # a file and a folder of the same name
        names.append(names[0] + "/" + draw(st.sampled_from(["b", "c.json", "d/e"])))
    files = {n: draw(st.binary(max_size=64)) for n in dict.fromkeys(names)}
    if draw(st.booleans()):
        files["weights.bin"] = draw(st.binary(min_size=1, max_size=2048))  # an LFS file: through the CDN
    return files


# Mostly revisions that exist and an honest commit, so the names get downloaded; the rest is nonsense.
_revisions = st.one_of(st.none(), st.none(), st.just("main"), st.just("v1"),
                       st.sampled_from(["../../x", "a/../b", "", "/abs"]), st.text(min_size=1, max_size=12))
_answered_sha = st.one_of(st.none(), st.none(), st.none(), st.none(),
                          st.sampled_from(["../../../etc", "A" * 40, "0" * 41, "", "main"]),
                          st.text(alphabet="0123456789abcdef", min_size=40, max_size=40))


@given(files=_listings(), revision=_revisions, answered_sha=_answered_sha, hashes=st.booleans())
def test_any_listing_is_downloaded_exactly_or_refused_by_name(fuzz_env, files, revision, answered_sha, hashes):
    fake, tmp_path = fuzz_env
    repo_id, root, base = fresh_example(fake, tmp_path)
    fake.add_repo(repo_id, files, tags=("v1",))
    fake.listing_hashes = hashes
    if answered_sha is not None:
        fake.inject("listing", edit=lambda data: {**data, "sha": answered_sha}, times=100)
    started = time.monotonic()
    try:
        folder = hub.snapshot(repo_id, revision=revision, cache_dir=root, max_workers=1)
    except ZooError as exc:
        event(f"snapshot refused: {type(exc).__name__}")
        assert names_the_input(str(exc), repo_id, *files, *[revision] * bool(revision)), str(exc)
    else:
        event("snapshot complete")
        for name, data in files.items():
            assert (folder / name).read_bytes() == data
    for name, data in files.items():
        try:
            path = hub.download(repo_id, name, revision=revision, cache_dir=root)
        except ZooError as exc:
            event(f"a file refused: {type(exc).__name__}")
            assert names_the_input(str(exc), repo_id, name, *[revision] * bool(revision)), str(exc)
        else:
            event("a file downloaded")
            assert path.read_bytes() == data and root in path.parents
    # every request is answered at once here: the bound is only there to catch a loop
    assert time.monotonic() - started < 10 + len(files)
    assert_cache_is_sound(root, base)


# --- (b) what the server does ---------------------------------------------------------------------------------------

_hosts = st.sampled_from(["hub", "cdn", None])


@st.composite
def _faults(draw, size: int):
    kind = draw(st.sampled_from(["cut", "ignore_range", "status", "reset", "delay", "stall", "corrupt", "length",
                                 "listing"]))
    fault: dict = {"kind": kind, "host": draw(_hosts), "times": draw(st.integers(1, 3))}
    if kind in ("cut", "stall"):
        fault["after"] = draw(st.integers(0, max(size, 1)))
    if kind in ("delay", "stall"):
        fault["seconds"] = 2 * TIMEOUT_S  # longer than a read may wait: a timeout
    if kind == "status":
        fault["code"] = draw(st.sampled_from([500, 502, 503, 504, 429]))
        if fault["code"] == 429:
            fault["headers"] = {"Retry-After": "0"}
    if kind == "length":
        fault["delta"] = draw(st.sampled_from([-7, -1, 1, 5]))
    if kind == "listing":
        fault["host"] = "hub"
        fault["change"] = draw(st.sampled_from(["size+1", "size-1", "sha256", "blobId", "no-lfs", "not-a-list"]))
    return fault


def _edit(change: str):
    def edit(data: dict) -> dict:
        siblings = data.get("siblings")
        if change == "not-a-list":
            return {**data, "siblings": {"weights": 1}}
        for s in siblings or []:
            if "size" in s and change.startswith("size"):
                s["size"] = max(0, s["size"] + (1 if change == "size+1" else -1))
                if "lfs" in s:
                    s["lfs"]["size"] = s["size"]
            elif change == "sha256" and "lfs" in s:
                s["lfs"]["sha256"] = hashlib.sha256(b"something else").hexdigest()
            elif change == "blobId" and "blobId" in s and "lfs" not in s:
                s["blobId"] = hashlib.sha1(b"something else").hexdigest()
            elif change == "no-lfs":
                s.pop("lfs", None)
        return data
    return edit


@st.composite
def _server_behaviours(draw):
    size = draw(st.sampled_from([0, 1, 1000, 70_000, 300_000]))
    data = random.Random(draw(st.integers(0, 2**32))).randbytes(size)
    faults = draw(st.lists(_faults(size), max_size=5))
    return data, faults, draw(st.booleans())


@given(behaviour=_server_behaviours())
def test_any_server_behaviour_ends_in_the_right_bytes_or_an_error_naming_the_file(fuzz_env, behaviour):
    fake, tmp_path = fuzz_env
    data, faults, hashes = behaviour
    repo_id, root, base = fresh_example(fake, tmp_path)
    files = {"config.json": data[:5000] or b"{}", "model.bin": data}  # a git file from the Hub, an LFS one via the CDN
    fake.add_repo(repo_id, files)
    fake.listing_hashes = hashes
    for fault in faults:
        params = {k: v for k, v in fault.items() if k not in ("kind", "host", "times", "change")}
        if fault["kind"] == "listing":
            params["edit"] = _edit(fault["change"])
        fake.inject(fault["kind"], host=fault["host"], times=fault["times"], **params)
    # Each failed attempt costs at most a connect and a read timeout; the budget allows MAX_RETRIES failures in a row
    # without progress per request or download, and each fault fails at most `times` attempts.
    attempts = sum(f["times"] for f in faults) + 4 * (client.MAX_RETRIES + 1)
    bound = 3.0 + attempts * (2 * TIMEOUT_S + 0.1)
    for name in files:
        started = time.monotonic()
        try:
            path = hub.download(repo_id, name, cache_dir=root)
        except ZooError as exc:
            event(f"{name}: {type(exc).__name__}")
            assert names_the_input(str(exc), name, repo_id), str(exc)
        else:
            event(f"{name}: right bytes")
            assert path.read_bytes() == files[name]
        assert time.monotonic() - started < bound, (name, faults)
    assert_cache_is_sound(root, base)
