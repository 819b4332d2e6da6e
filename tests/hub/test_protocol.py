"""Every branch of the Hub protocol, against `responses` mocks: lookups, redirects, error codes, retries, Range
resume, the token kept off the CDN, HEAD metadata for listings without hashes, offline mode with no request."""

from __future__ import annotations

import hashlib
import logging
import os

import pytest
import requests
import responses
from responses import matchers

from zoo.errors import (
    AuthenticationError,
    CorruptDownloadError,
    EntryNotFoundError,
    GatedRepoError,
    HubError,
    HubUnavailableError,
    OfflineModeError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafePathError,
)
from zoo.hub import client, repo as repo_module
from zoo.hub.repo import HubRepo

EP = "https://hub.test"
CDN = "https://cdn.test"
SHA = "a" * 40
CONFIG = b'{"model_type": "bert"}'
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB
WEIGHTS_SHA256 = hashlib.sha256(WEIGHTS).hexdigest()
TOKEN = "hf_secret_token_123"


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def siblings(blobs: bool = True) -> list[dict]:
    if not blobs:
        return [{"rfilename": "config.json"}, {"rfilename": "model.safetensors"}]
    return [
        {"rfilename": "config.json", "size": len(CONFIG), "blobId": git_sha1(CONFIG)},
        {"rfilename": "model.safetensors", "size": len(WEIGHTS), "blobId": "b" * 40,
         "lfs": {"sha256": WEIGHTS_SHA256, "size": len(WEIGHTS), "pointerSize": 134}},
    ]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_ENDPOINT", EP)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("ZOO_CACHE", "ZOO_OFFLINE", "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT",
                 "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.0)
    monkeypatch.setattr(client, "BACKOFF_MAX_S", 0.0)
    repo_module.forget_lookups()
    client.set_session(None)
    yield tmp_path / "cache"
    repo_module.forget_lookups()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def add_lookup(rsps, revision="main", blobs=True, **kwargs):
    return rsps.get(f"{EP}/api/models/org/name/revision/{revision}",
                    json={"id": "org/name", "sha": SHA, "siblings": siblings(blobs)}, **kwargs)


def add_files(rsps):
    rsps.get(f"{EP}/org/name/resolve/{SHA}/config.json", body=CONFIG,
             headers={"ETag": f'"{git_sha1(CONFIG)}"', "X-Repo-Commit": SHA})
    rsps.get(f"{EP}/org/name/resolve/{SHA}/model.safetensors", status=302,
             headers={"Location": f"{CDN}/blobs/{WEIGHTS_SHA256}?X-Amz-Signature=sig", "X-Repo-Commit": SHA,
                      "X-Linked-Etag": f'"{WEIGHTS_SHA256}"', "X-Linked-Size": str(len(WEIGHTS))})
    return rsps.get(f"{CDN}/blobs/{WEIGHTS_SHA256}", body=WEIGHTS)


def test_lookup_is_one_request_with_blobs_and_lazy(env, rsps):
    lookup = add_lookup(rsps, match=[matchers.query_param_matcher({"blobs": "true"})])
    repo = HubRepo("org/name")
    assert len(rsps.calls) == 0  # construction sends nothing
    assert repo.exists("config.json") and not repo.exists("vocab.txt")
    assert repo.files() == ["config.json", "model.safetensors"]
    assert repo.commit == SHA
    assert lookup.call_count == 1 and len(rsps.calls) == 1


def test_cdn_redirect_drops_the_token_which_is_never_logged(env, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    add_lookup(rsps)
    cdn = add_files(rsps)
    path = HubRepo("org/name", token=TOKEN).require("model.safetensors")
    assert path.read_bytes() == WEIGHTS
    hub_calls = [c for c in rsps.calls if c.request.url.startswith(EP)]
    assert all(c.request.headers.get("Authorization") == f"Bearer {TOKEN}" for c in hub_calls)
    assert cdn.call_count == 1 and "Authorization" not in cdn.calls[0].request.headers
    assert TOKEN not in caplog.text
    assert "X-Amz-Signature" not in caplog.text  # signed CDN URLs are logged without their query


def test_same_host_redirect_keeps_the_token(env, rsps):
    rsps.get(f"{EP}/api/models/old/name/revision/main", status=307,
             headers={"Location": "/api/models/org/name/revision/main?blobs=true"})
    add_lookup(rsps)
    repo = HubRepo("old/name", token=TOKEN)
    assert repo.commit == SHA
    assert [c.request.headers.get("Authorization") for c in rsps.calls] == [f"Bearer {TOKEN}"] * 2


def test_token_from_env_then_file_then_none(env, rsps, monkeypatch, tmp_path):
    add_lookup(rsps)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "token").write_text("hf_from_file\n")
    HubRepo("org/name").commit
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    repo_module.forget_lookups()
    HubRepo("org/name").commit
    repo_module.forget_lookups()
    HubRepo("org/name", token=False).commit
    sent = [c.request.headers.get("Authorization") for c in rsps.calls]
    assert sent == ["Bearer hf_from_file", "Bearer hf_from_env", None]


@pytest.mark.parametrize("status,code,message,error", [
    (404, "RepoNotFound", "Repository not found", RepoNotFoundError),
    (401, "RepoNotFound", "Invalid username or password.", RepoNotFoundError),
    (403, "GatedRepo", "Access to model org/name is restricted.", GatedRepoError),
    (404, "RevisionNotFound", "Invalid rev id: main", RevisionNotFoundError),
    (401, None, "Invalid credentials in Authorization header", AuthenticationError),
    (403, None, "Forbidden", AuthenticationError),
    (418, None, "I'm a teapot", HubError),
])
def test_error_codes_become_zoo_errors_naming_repo_and_revision(env, rsps, status, code, message, error):
    headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    rsps.get(f"{EP}/api/models/org/name/revision/main", status=status, headers=headers)
    with pytest.raises(error) as info:
        HubRepo("org/name").get("config.json")
    text = str(info.value)
    assert "org/name" in text and (error is not RevisionNotFoundError or "'main'" in text)
    assert info.value.repo_id == "org/name" and info.value.revision == "main"
    assert len(rsps.calls) == 1  # client errors are not retried


def test_entry_not_found_names_the_file_and_is_remembered(env, rsps):
    add_lookup(rsps)
    rsps.get(f"{EP}/org/name/resolve/{SHA}/config.json", status=404,
             headers={"X-Error-Code": "EntryNotFound", "X-Error-Message": "gone", "X-Repo-Commit": SHA})
    with pytest.raises(EntryNotFoundError) as info:
        HubRepo("org/name").require("config.json")
    assert "config.json" in str(info.value) and "org/name" in str(info.value)
    assert (env / "models--org--name" / ".no_exist" / SHA / "config.json").is_file()


def test_absent_file_is_answered_from_the_listing(env, rsps):
    add_lookup(rsps)
    repo = HubRepo("org/name")
    assert repo.get("vocab.txt") is None
    with pytest.raises(EntryNotFoundError) as info:
        repo.require("vocab.txt")
    assert "'vocab.txt'" in str(info.value) and "'main'" in str(info.value) and "config.json" in str(info.value)
    assert (env / "models--org--name" / ".no_exist" / SHA / "vocab.txt").is_file()
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("first", [
    {"status": 503},
    {"status": 429, "headers": {"Retry-After": "0"}},
    {"body": requests.ConnectionError("connection reset by peer")},
    {"body": requests.ReadTimeout("read timed out")},
])
def test_transient_failures_are_retried(env, rsps, first):
    rsps.get(f"{EP}/api/models/org/name/revision/main", **first)
    rsps.get(f"{EP}/api/models/org/name/revision/main", **first)
    add_lookup(rsps)
    assert HubRepo("org/name").commit == SHA
    assert len(rsps.calls) == 3


def test_retries_give_up_with_an_unavailable_error(env, rsps):
    rsps.get(f"{EP}/api/models/org/name/revision/main", status=502)
    with pytest.raises(HubUnavailableError) as info:
        HubRepo("org/name").commit
    assert "502" in str(info.value) and "org/name" in str(info.value)
    assert len(rsps.calls) == client.MAX_RETRIES + 1


def test_download_retries_5xx_from_the_cdn(env, rsps):
    add_lookup(rsps)
    add_files(rsps)
    rsps.replace(responses.GET, f"{CDN}/blobs/{WEIGHTS_SHA256}", status=503)
    rsps.add(responses.GET, f"{CDN}/blobs/{WEIGHTS_SHA256}", body=WEIGHTS)
    assert HubRepo("org/name").require("model.safetensors").read_bytes() == WEIGHTS


def _blob_dir(cache):
    d = cache / "models--org--name" / "blobs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_partial_download_resumes_with_a_range_request(env, rsps):
    add_lookup(rsps)
    add_files(rsps)
    half = len(WEIGHTS) // 2
    (_blob_dir(env) / f"{WEIGHTS_SHA256}.incomplete").write_bytes(WEIGHTS[:half])

    def cdn(request):
        assert request.headers["Range"] == f"bytes={half}-"
        return 206, {"Content-Range": f"bytes {half}-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"}, WEIGHTS[half:]

    rsps.remove(responses.GET, f"{CDN}/blobs/{WEIGHTS_SHA256}")
    rsps.add_callback(responses.GET, f"{CDN}/blobs/{WEIGHTS_SHA256}", callback=cdn)
    path = HubRepo("org/name").require("model.safetensors")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == WEIGHTS_SHA256
    assert not (_blob_dir(env) / f"{WEIGHTS_SHA256}.incomplete").exists()


def test_a_server_that_ignores_range_restarts_from_zero(env, rsps):
    add_lookup(rsps)
    add_files(rsps)  # the CDN answers 200 with the whole body whatever the Range
    (_blob_dir(env) / f"{WEIGHTS_SHA256}.incomplete").write_bytes(WEIGHTS[:1000])
    path = HubRepo("org/name").require("model.safetensors")
    assert path.read_bytes() == WEIGHTS


def test_a_whole_partial_file_is_finished_by_416(env, rsps):
    add_lookup(rsps, blobs=False)  # no sizes anywhere: only the server can say the partial file is whole
    rsps.head(f"{EP}/org/name/resolve/{SHA}/model.safetensors", status=302,
              headers={"Location": f"{CDN}/blobs/{WEIGHTS_SHA256}?X-Amz-Signature=sig", "X-Repo-Commit": SHA,
                       "X-Linked-Etag": f'"{WEIGHTS_SHA256}"'})
    cdn = rsps.get(f"{CDN}/blobs/{WEIGHTS_SHA256}", status=416)
    (_blob_dir(env) / f"{WEIGHTS_SHA256}.incomplete").write_bytes(WEIGHTS)
    assert HubRepo("org/name").require("model.safetensors").read_bytes() == WEIGHTS
    assert cdn.call_count == 1 and cdn.calls[0].request.headers["Range"] == f"bytes={len(WEIGHTS)}-"


def test_a_whole_partial_file_of_known_size_needs_no_request(env, rsps):
    add_lookup(rsps)
    add_files(rsps)
    (_blob_dir(env) / f"{WEIGHTS_SHA256}.incomplete").write_bytes(WEIGHTS)
    assert HubRepo("org/name").require("model.safetensors").read_bytes() == WEIGHTS
    assert all(CDN not in c.request.url for c in rsps.calls)


def test_corrupt_download_never_reaches_the_snapshot(env, rsps):
    add_lookup(rsps)
    add_files(rsps)
    bad = bytearray(WEIGHTS)
    bad[5] ^= 1
    rsps.replace(responses.GET, f"{CDN}/blobs/{WEIGHTS_SHA256}", body=bytes(bad))
    with pytest.raises(CorruptDownloadError) as info:
        HubRepo("org/name").require("model.safetensors")
    assert "sha256" in str(info.value) and "model.safetensors" in str(info.value)
    folder = env / "models--org--name"
    assert not any((folder / "blobs").iterdir())  # neither the blob nor its .incomplete
    assert not (folder / "snapshots" / SHA / "model.safetensors").exists()


def test_git_blob_hash_of_small_files_is_checked(env, rsps):
    add_lookup(rsps)
    rsps.get(f"{EP}/org/name/resolve/{SHA}/config.json", body=b'{"model_type": "gpt2"}')  # same size, other bytes
    with pytest.raises(CorruptDownloadError, match="git-sha1"):
        HubRepo("org/name").require("config.json")


def test_listing_without_hashes_falls_back_to_head(env, rsps):
    add_lookup(rsps, blobs=False)
    rsps.head(f"{EP}/org/name/resolve/{SHA}/model.safetensors", status=302,
              headers={"Location": f"{CDN}/blobs/{WEIGHTS_SHA256}?X-Amz-Signature=sig", "X-Repo-Commit": SHA,
                       "X-Linked-Etag": f'"{WEIGHTS_SHA256}"', "X-Linked-Size": str(len(WEIGHTS))})
    cdn = rsps.get(f"{CDN}/blobs/{WEIGHTS_SHA256}", body=WEIGHTS)
    path = HubRepo("org/name", token=TOKEN).require("model.safetensors")
    assert path.resolve().name == WEIGHTS_SHA256 and path.read_bytes() == WEIGHTS
    assert [c.request.method for c in rsps.calls] == ["GET", "HEAD", "GET"]
    assert "Authorization" not in cdn.calls[0].request.headers  # straight to the CDN, without the token


def test_weak_quoted_etags_are_normalised():
    assert client.normalize_etag('W/"abc"') == "abc" and client.normalize_etag('"abc"') == "abc"
    assert client.normalize_etag(None) is None


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "a/../../b", "a//b", "C:/x", "a\\..\\b", "./a"])
def test_unsafe_names_from_the_caller_are_refused_without_a_request(env, rsps, name):
    with pytest.raises(UnsafePathError):
        HubRepo("org/name").get(name)
    assert len(rsps.calls) == 0


def test_unsafe_names_from_the_server_are_refused(env, rsps):
    rsps.get(f"{EP}/api/models/org/name/revision/main", json={"sha": SHA, "siblings": [
        {"rfilename": "config.json", "size": len(CONFIG), "blobId": git_sha1(CONFIG)},
        {"rfilename": "../../../outside.txt", "size": 1, "blobId": "c" * 40}]})
    with pytest.raises(UnsafePathError, match="outside.txt"):
        HubRepo("org/name").snapshot()
    assert len(rsps.calls) == 1  # refused before any download


def test_invalid_revision_names_are_refused():
    with pytest.raises(UnsafePathError):
        HubRepo("org/name", revision="../../etc")


def _populate(cache, with_tree=True):
    from zoo.hub.cache import RemoteFile, RepoCache

    c = RepoCache(cache, "org/name")
    c.blobs.mkdir(parents=True)
    (c.blobs / git_sha1(CONFIG)).write_bytes(CONFIG)
    c.link(SHA, "config.json", git_sha1(CONFIG))
    c.write_ref("main", SHA)
    if with_tree:
        c.write_tree(SHA, {"config.json": RemoteFile("config.json", len(CONFIG), git_sha1(CONFIG)),
                           "model.safetensors": RemoteFile("model.safetensors", len(WEIGHTS), "b" * 40, WEIGHTS_SHA256)})
    return c


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "ZOO_OFFLINE", "local_files_only"])
def test_offline_mode_sends_nothing(env, rsps, monkeypatch, how):
    _populate(env)
    kwargs = {}
    if how == "local_files_only":
        kwargs["local_files_only"] = True
    else:
        monkeypatch.setenv(how, "1")
    repo = HubRepo("org/name", **kwargs)
    assert repo.require("config.json").read_bytes() == CONFIG
    assert repo.commit == SHA and repo.exists("model.safetensors") and not repo.exists("vocab.txt")
    assert repo.get("vocab.txt") is None
    with pytest.raises(OfflineModeError) as info:
        repo.require("model.safetensors")
    text = str(info.value)
    assert "not in the cache" in text and "zoo download org/name model.safetensors" in text
    with pytest.raises(OfflineModeError):
        HubRepo("other/repo", **kwargs).get("config.json")
    assert len(rsps.calls) == 0


def test_offline_without_a_file_list_treats_uncached_files_as_unknown(env, rsps, monkeypatch):
    _populate(env, with_tree=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = HubRepo("org/name")
    assert repo.get("tokenizer.json") is None  # an optional probe goes on
    with pytest.raises(OfflineModeError, match="not in the cache"):
        repo.require("tokenizer.json")
    assert len(rsps.calls) == 0


def test_commit_revision_in_cache_needs_no_request(env, rsps):
    _populate(env)
    repo = HubRepo("org/name", revision=SHA)
    assert repo.require("config.json").read_bytes() == CONFIG
    assert repo.exists("model.safetensors") and repo.get("vocab.txt") is None
    assert len(rsps.calls) == 0


def test_unreachable_hub_falls_back_to_the_cache_with_one_warning(env, rsps, caplog):
    _populate(env)
    rsps.get(f"{EP}/api/models/org/name/revision/main", body=requests.ConnectionError("refused"))
    caplog.set_level(logging.WARNING)
    assert HubRepo("org/name").require("config.json").read_bytes() == CONFIG
    assert HubRepo("org/name").require("config.json").read_bytes() == CONFIG  # e.g. the tokenizer after the model
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cached snapshot" in warnings[0].getMessage()
    assert len(rsps.calls) == 1  # no retry with a cache to fall back on; the second repo does not ask again


def test_unreachable_hub_and_nothing_cached_is_an_error(env, rsps):
    rsps.get(f"{EP}/api/models/org/name/revision/main", body=requests.ConnectionError("refused"))
    with pytest.raises(HubUnavailableError, match="HF_HUB_OFFLINE"):
        HubRepo("org/name").get("config.json")


def test_endpoint_precedence(monkeypatch):
    from zoo.hub import settings

    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    monkeypatch.delenv("ZOO_ENDPOINT", raising=False)
    assert settings.endpoint() == "https://mirror.example"
    monkeypatch.setenv("ZOO_ENDPOINT", "https://zoo.example")
    assert settings.endpoint() == "https://zoo.example"
    monkeypatch.delenv("ZOO_ENDPOINT")
    monkeypatch.delenv("HF_ENDPOINT")
    assert settings.endpoint() == "https://huggingface.co"


def test_cache_dir_precedence(monkeypatch, tmp_path):
    from zoo.hub import settings

    for name in ("ZOO_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert settings.cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    assert settings.cache_dir() == tmp_path / "hf"
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo"))
    assert settings.cache_dir() == tmp_path / "zoo"
    assert settings.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("ZOO_CACHE")
    assert settings.cache_dir() == settings.hf_home() / "hub"
    assert str(settings.cache_dir()).endswith(os.path.join(".cache", "huggingface", "hub"))


def test_progress_bars_follow_the_environment(monkeypatch):
    from zoo.hub import settings

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    assert not settings.progress_bars_enabled()
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    assert settings.progress_bars_enabled() is False  # pytest's captured stderr is not a terminal


def test_a_range_answer_at_the_wrong_offset_is_discarded(env, rsps):
    add_lookup(rsps)
    add_files(rsps)
    (_blob_dir(env) / f"{WEIGHTS_SHA256}.incomplete").write_bytes(WEIGHTS[:1000])
    rsps.remove(responses.GET, f"{CDN}/blobs/{WEIGHTS_SHA256}")
    rsps.get(f"{CDN}/blobs/{WEIGHTS_SHA256}", status=206, body=WEIGHTS[10:],
             headers={"Content-Range": f"bytes 10-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"})
    rsps.get(f"{CDN}/blobs/{WEIGHTS_SHA256}", body=WEIGHTS)
    assert HubRepo("org/name").require("model.safetensors").read_bytes() == WEIGHTS
    cdn = [c for c in rsps.calls if c.request.url.startswith(CDN)]
    assert cdn[0].request.headers["Range"] == "bytes=1000-" and "Range" not in cdn[1].request.headers


def test_token_settings(monkeypatch, tmp_path):
    from zoo.hub import settings

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert settings.token() is None
    (tmp_path / "elsewhere").write_text("hf_path\n")
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "elsewhere"))
    assert settings.token() == "hf_path" and settings.token(True) == "hf_path"
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    assert settings.token() is None and settings.token(True) == "hf_path" and settings.token("hf_x") == "hf_x"
    assert settings.token(False) is None


def test_the_session_can_be_replaced(env, rsps):
    class Counting(requests.Session):
        sent = 0

        def send(self, request, **kwargs):
            Counting.sent += 1
            return super().send(request, **kwargs)

    add_lookup(rsps)
    client.set_session(Counting())
    try:
        assert HubRepo("org/name").commit == SHA
        assert Counting.sent == 1 and client.get_session().__class__ is Counting
    finally:
        client.set_session(None)
    assert client.get_session().__class__ is requests.Session
