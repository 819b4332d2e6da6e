"""Regression tests for the hub items of issue 12, against the loopback fake Hub: bounded retries whatever the server
does, every blob verified on every path, planted symlinks refused, a full disk, an unreachable Hub that fails fast,
errors that blame the host that failed, logs without secrets, names the file system cannot hold, file/folder clashes,
and `zoo cache` verbs that say what they found (and repair it)."""

from __future__ import annotations

import argparse
import errno
import hashlib
import logging
import os
import socket
import time

import pytest
import requests

from zoo import hub
from zoo.errors import (
    CacheFullError,
    CacheNotFoundError,
    CorruptDownloadError,
    HubUnavailableError,
    ModelFileNotFoundError,
    UnsafeCacheEntryError,
    UnsafePathError,
    ZooError,
)
from zoo.hub import client, transfer
from zoo.hub.cli import add_commands
from zoo.hub.manage import verify_cache

BIG = os.urandom(3 << 20)  # an LFS file: redirected to the CDN
CONFIG = b'{"model_type": "bert", "hidden_size": 8}'
TOKEN = "hf_secretTokenForTheLogs42"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def repo(hub_env):
    return hub_env.hub.add_repo("org/name", {"config.json": CONFIG, "model.safetensors": BIG})


def repo_folder(hub_env):
    return hub_env.cache / "models--org--name"


def assert_nothing_cached(hub_env, commit, name):
    blobs = repo_folder(hub_env) / "blobs"
    assert not any(p.is_file() and not p.name.endswith(".incomplete") for p in blobs.iterdir()) if blobs.is_dir() \
        else True
    assert not os.path.lexists(repo_folder(hub_env) / "snapshots" / commit / name)


def zoo(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zoo")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


# --- 1. one bound on retries ----------------------------------------------------------------------------------------


def test_a_server_that_ignores_range_and_keeps_cutting_gives_up(hub_env, repo):
    hub_env.hub.inject("ignore_range", host="cdn", times=100)
    hub_env.hub.inject("cut", host="cdn", after=1 << 20, times=100)  # the same place every time
    with pytest.raises(HubUnavailableError) as info:
        hub.download("org/name", "model.safetensors")
    message = str(info.value)
    assert "'model.safetensors' of 'org/name'" in message and hub_env.hub.cdn_url in message
    assert "ignored the Range header" in message and "attempt(s)" in message and "without progress" in message
    assert hub_env.hub.count("cdn") <= client.MAX_RETRIES + 2
    assert_nothing_cached(hub_env, repo, "model.safetensors")


def test_a_download_without_progress_gives_up_after_the_stall_timeout(hub_env, repo, monkeypatch):
    monkeypatch.setenv("ZOO_STALL_TIMEOUT", "0.5")
    hub_env.hub.inject("ignore_range", host="cdn", times=100)
    hub_env.hub.inject("stall", host="cdn", after=1 << 20, seconds=0.2, times=100)
    started = time.monotonic()
    with pytest.raises(HubUnavailableError, match="ZOO_STALL_TIMEOUT") as info:
        hub.download("org/name", "model.safetensors")
    assert time.monotonic() - started < 5  # 0.5 s without progress, plus one attempt of 0.2 s
    assert "'model.safetensors'" in str(info.value) and hub_env.hub.count("cdn") < client.MAX_RETRIES + 1


# --- 3. every blob verified, HEAD-only path included ----------------------------------------------------------------


def test_a_non_lfs_body_that_does_not_match_its_etag_is_refused_when_the_listing_has_no_hashes(hub_env):
    sha = hub_env.hub.add_repo("org/name", {"config.json": CONFIG})
    hub_env.hub.listing_hashes = False  # zoo asks with a HEAD: the ETag (git blob sha1) is all it knows
    hub_env.hub.inject("corrupt", host="hub", method="GET", path="/resolve/", times=2)
    with pytest.raises(CorruptDownloadError, match="git-sha1") as info:
        hub.download("org/name", "config.json")
    assert "'config.json' of 'org/name'" in str(info.value)
    assert hub_env.hub.count("hub", method="HEAD") == 1
    assert_nothing_cached(hub_env, sha, "config.json")
    assert hub.download("org/name", "config.json").read_bytes() == CONFIG  # an honest body is accepted


# --- 4. planted symlinks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["incomplete", "blob", "lock", "ref", "tree"])
def test_a_planted_symlink_in_the_cache_is_refused_and_the_outside_file_untouched(hub_env, repo, tmp_path, entry):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    etag, folder = sha256(BIG), repo_folder(hub_env)
    planted = {"incomplete": folder / "blobs" / f"{etag}.incomplete", "blob": folder / "blobs" / etag,
               "lock": hub_env.cache / ".locks" / folder.name / f"{etag}.lock", "ref": folder / "refs" / "main",
               "tree": folder / "trees" / f"{repo}.json"}[entry]
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.symlink_to(outside)
    with pytest.raises(UnsafeCacheEntryError) as info:
        hub.download("org/name", "model.safetensors", revision=repo if entry == "tree" else None)
    assert str(planted) in str(info.value) and "symlink" in str(info.value) and "Remove it" in str(info.value)
    assert outside.read_bytes() == b"precious"
    assert not os.path.lexists(folder / "snapshots" / repo / "model.safetensors")


# --- 6. a full disk -------------------------------------------------------------------------------------------------


class _DiskFillsUp:
    """A partial file whose writes fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, f, room: list[int]) -> None:
        self._f, self._room = f, room

    def write(self, data) -> int:
        if len(data) > self._room[0]:
            self._f.write(data[: self._room[0]])
            self._room[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room[0] -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def test_a_full_disk_is_a_clear_error_and_the_cache_stays_consistent(hub_env, repo, monkeypatch):
    real = transfer._open_partial
    with monkeypatch.context() as patch, pytest.raises(CacheFullError) as info:
        patch.setattr(transfer, "_open_partial", lambda path: _DiskFillsUp(real(path), [1 << 20]))
        hub.download("org/name", "model.safetensors")
    error = info.value
    assert isinstance(error, ZooError) and isinstance(error, OSError) and error.errno == errno.ENOSPC
    message = str(error)
    assert message.startswith("No space left on the disk of the cache")
    assert "'model.safetensors' of 'org/name'" in message and str(hub_env.cache) in message
    assert f"needs {len(BIG)} bytes" in message and f"{1 << 20} written so far" in message
    assert_nothing_cached(hub_env, repo, "model.safetensors")
    partial = repo_folder(hub_env) / "blobs" / f"{sha256(BIG)}.incomplete"
    assert partial.read_bytes() == BIG[: 1 << 20]  # a prefix of the file: the next run resumes it
    hub_env.hub.reset_log()
    assert hub.download("org/name", "model.safetensors").read_bytes() == BIG
    assert [r.headers.get("Range") for r in hub_env.hub.log("cdn")] == [f"bytes={1 << 20}-"]


# --- 7. an unreachable Hub fails fast, and says a folder was not found either -------------------------------------


class _CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def send(self, request, **kwargs):
        self.sent += 1
        return super().send(request, **kwargs)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("where", ["refused", "unresolvable"])
def test_an_unreachable_hub_is_not_retried_in_vain(hub_env, monkeypatch, where):
    endpoint = f"http://127.0.0.1:{_closed_port()}" if where == "refused" else "http://nonexistent.invalid"
    monkeypatch.setenv("ZOO_ENDPOINT", endpoint)
    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.5)  # the real backoff: the time is the point
    monkeypatch.setattr(client, "BACKOFF_MAX_S", 8.0)
    session = _CountingSession()
    client.set_session(session)
    started = time.monotonic()
    with pytest.raises(HubUnavailableError) as info:
        hub.repo_files("mistyped-model").require("config.json")
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith("no local folder 'mistyped-model' exists")
    assert endpoint in message and "'mistyped-model'" in message
    if where == "refused":
        assert session.sent == 2 and "connection refused" in message and elapsed < 3
    else:
        assert session.sent == 1 and "host name not resolved" in message
    # what can only be a path never reaches the Hub
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        hub.repo_files("./mistyped-model")
    assert session.sent <= 2


# --- 8. the host that failed ----------------------------------------------------------------------------------------


def test_errors_name_the_cdn_when_the_cdn_failed(hub_env, repo):
    hub_env.hub.inject("status", host="cdn", code=503, times=100)
    with pytest.raises(HubUnavailableError) as info:
        hub.download("org/name", "model.safetensors")
    message = str(info.value)
    assert message.startswith(f"{hub_env.hub.cdn_url} answered HTTP 503") and hub_env.hub.endpoint not in message
    assert "'model.safetensors' of 'org/name'" in message


# --- 9. logs without secrets ----------------------------------------------------------------------------------------


def test_debug_logs_carry_no_signed_query_or_token(hub_env, caplog):
    hub_env.hub.add_repo("org/private", {"model.safetensors": BIG}, private=True, tokens=(TOKEN,))
    hub_env.hub.inject("status", host="cdn", code=503)  # a retry, so the retry lines are logged as well
    hub_env.hub.inject("cut", host="cdn", after=1 << 20)  # and a resume
    caplog.set_level(logging.DEBUG)
    assert hub.download("org/private", "model.safetensors", token=TOKEN).read_bytes() == BIG
    lines = [r.getMessage() for r in caplog.records] + [caplog.text]
    cdn_lines = [line for line in lines if "/repos/" in line and "urllib3" in line or "GET /repos/" in line]
    assert cdn_lines, "urllib3 logged the CDN request"
    assert not any("X-Amz-Signature" in line or "fake" in line.split("/repos/")[-1] for line in cdn_lines)
    assert not any("X-Amz-Signature" in line or TOKEN in line for line in lines)


# --- 12. names the file system cannot hold, clashes, and the cache verbs --------------------------------------------


def test_a_file_name_too_long_for_the_file_system_is_refused_by_name(hub_env):
    long_name = "a" * 300 + ".json"
    hub_env.hub.add_repo("org/name", {"config.json": CONFIG, long_name: b"{}"})
    with pytest.raises(UnsafePathError, match="ENAMETOOLONG") as info:
        hub.snapshot("org/name")
    assert "'aaaa" in str(info.value) and "(305 characters)" in str(info.value)
    with pytest.raises(UnsafePathError, match="305 bytes long"):
        hub.download("org/name", long_name)


def test_a_file_and_a_folder_of_the_same_name_are_refused_naming_both(hub_env, tmp_path):
    hub_env.hub.add_repo("org/name", {"a": b"file", "a/b": b"in a folder", "c": b"fine"})
    with pytest.raises(UnsafePathError) as info:
        hub.snapshot("org/name")
    assert "file 'a'" in str(info.value) and "'a/b'" in str(info.value) and "'org/name'" in str(info.value)
    assert hub.download("org/name", "c").read_bytes() == b"fine"
    with pytest.raises(UnsafePathError, match="'a/b'"):
        hub.download("org/name", "a")
    # without a listing to warn first, the snapshot folder itself refuses the second name
    from zoo.hub.cache import RepoCache

    cache = RepoCache(tmp_path, "org/other")
    cache.blobs.mkdir(parents=True)
    (cache.blobs / ("1" * 40)).write_bytes(b"x")
    cache.link("2" * 40, "a", "1" * 40)
    with pytest.raises(UnsafePathError, match="already holds a file 'a'"):
        cache.link("2" * 40, "a/b", "1" * 40)


def test_cache_verify_reports_a_snapshot_link_outside_blobs(hub_env, repo, tmp_path, capsys):
    folder = hub.snapshot("org/name")
    outside = tmp_path / "outside.json"
    outside.write_bytes(CONFIG)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(outside)
    capsys.readouterr()
    assert zoo("cache", "verify") == 1
    out = capsys.readouterr().out
    assert "OUTSIDE" in out and str(outside) in out and "config.json" in out and "all" not in out.split("\n")[-2]
    assert sorted(c.status for c in verify_cache()) == ["ok", "ok", "outside"]


def test_cache_ls_of_a_folder_that_does_not_exist_is_an_error(hub_env, tmp_path):
    with pytest.raises(CacheNotFoundError, match="does not exist"):
        zoo("cache", "ls", "--cache-dir", str(tmp_path / "nonexistent"))
    with pytest.raises(CacheNotFoundError, match=r"nonexistent \(given as cache_dir\)"):
        zoo("cache", "verify", "--cache-dir", str(tmp_path / "nonexistent"))


def test_cache_verify_repair_fetches_again_what_is_bad(hub_env, tmp_path, capsys):
    sha = hub_env.hub.add_repo("org/name", {"config.json": CONFIG, "vocab.txt": b"[PAD]\n", "model.safetensors": BIG,
                                            "tokenizer.json": b"{}"})
    folder = hub.snapshot("org/name")
    weights = (folder / "model.safetensors").resolve()
    weights.write_bytes(b"x" + BIG[1:])  # corrupt
    (folder / "vocab.txt").resolve().unlink()  # missing
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"{}")
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer.json").symlink_to(outside)  # leads outside blobs/
    capsys.readouterr()
    assert zoo("cache", "verify", "--repair") == 0
    out = capsys.readouterr().out
    assert out.count("REPAIRED") == 3 and "NOT REPAIRED" not in out and "repaired 3 of 3" in out
    assert all(c.status == "ok" for c in verify_cache())
    for name, data in (("model.safetensors", BIG), ("vocab.txt", b"[PAD]\n"), ("tokenizer.json", b"{}")):
        assert (folder / name).read_bytes() == data and (folder / name).resolve().parent.name == "blobs"
    assert outside.read_bytes() == b"{}" and folder.name == sha
    assert zoo("cache", "verify") == 0


def test_every_option_of_the_hub_verbs_has_help():
    parser = argparse.ArgumentParser(prog="zoo")
    subparsers = parser.add_subparsers(dest="command")
    add_commands(subparsers)
    parsers = dict(subparsers.choices)
    cache_verbs = next(a for a in parsers["cache"]._actions if isinstance(a, argparse._SubParsersAction))
    parsers.update({f"cache {k}": v for k, v in cache_verbs.choices.items()})
    missing = [f"{name} {action.dest}" for name, p in parsers.items() for action in p._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
               and (not action.help or action.help == argparse.SUPPRESS)]
    assert missing == []
    assert "--repair" in parsers["cache verify"].format_help()
