"""hub.download / hub.snapshot against the loopback fake Hub (API on 127.0.0.1, CDN on 127.0.0.2): revisions,
patterns, cut connections, concurrent processes, a stopped server, private and gated repos, corrupt bodies."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from zoo import hub
from zoo.errors import (
    AuthenticationError,
    CorruptDownloadError,
    EntryNotFoundError,
    GatedRepoError,
    HubUnavailableError,
    OfflineModeError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafePathError,
)
from zoo.hub.repo import HubRepo, forget_lookups

BIG = os.urandom(3 << 20)  # an LFS file: redirected to the CDN
CONFIG = json.dumps({"model_type": "bert", "hidden_size": 8}).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def repo_v1(hub_env):
    files = {"config.json": CONFIG, "vocab.txt": "[PAD]\n[UNK]\nhello\n", "model.safetensors": BIG,
             "onnx/model.onnx": b"onnx!" * 10, "README.md": "# card"}
    return hub_env.hub.add_repo("org/name", files, tags=("v1.0",))


def test_download_returns_a_path_in_the_snapshot(hub_env, repo_v1):
    path = hub.download("org/name", "config.json", revision="main")
    assert path == hub_env.cache / "models--org--name" / "snapshots" / repo_v1 / "config.json"
    assert path.is_symlink() and not os.path.isabs(os.readlink(path)) and path.read_bytes() == CONFIG
    assert (hub_env.cache / "models--org--name" / "refs" / "main").read_text() == repo_v1
    big = hub.download("org/name", "model.safetensors")
    assert big.resolve().name == sha256(BIG) and big.read_bytes() == BIG
    assert hub_env.hub.count("cdn") == 1 and hub_env.hub.count("hub", path="/api/") == 1


def test_revisions_by_tag_and_commit(hub_env, repo_v1):
    v2 = hub_env.hub.commit("org/name", {"config.json": b'{"model_type": "bert", "v": 2}', "model.safetensors": BIG})
    assert b'"v": 2' in hub.download("org/name", "config.json").read_bytes()
    assert hub.download("org/name", "config.json", revision="v1.0").read_bytes() == CONFIG
    assert hub.download("org/name", "config.json", revision=repo_v1).read_bytes() == CONFIG
    # both revisions share the weights blob
    assert hub.download("org/name", "model.safetensors", revision=v2).resolve() == \
        hub.download("org/name", "model.safetensors", revision="v1.0").resolve()
    assert hub_env.hub.count("cdn") == 1
    refs = hub_env.cache / "models--org--name" / "refs"
    assert (refs / "main").read_text() == v2 and (refs / "v1.0").read_text() == repo_v1
    with pytest.raises(RevisionNotFoundError, match="'v9'"):
        hub.download("org/name", "config.json", revision="v9")


def test_snapshot_with_patterns_downloads_in_parallel(hub_env, repo_v1):
    folder = hub.snapshot("org/name", revision="v1.0", allow_patterns=["*.json", "*.safetensors"])
    assert folder.name == repo_v1
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    folder = hub.snapshot("org/name", ignore_patterns=["*.safetensors", "onnx/"])
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == \
        ["README.md", "config.json", "model.safetensors", "vocab.txt"]  # the first call's weights are still there
    assert not (folder / "onnx").exists()
    forget_lookups()
    hub_env.hub.reset_log()
    hub.snapshot("org/name")  # only the ONNX file (LFS: a redirect to the CDN) is missing
    assert [r.path.rsplit("/", 1)[-1] for r in hub_env.hub.log("hub")] == ["main", "model.onnx"]
    assert hub_env.hub.count("cdn") == 1


def test_missing_file_and_repo(hub_env, repo_v1):
    with pytest.raises(EntryNotFoundError) as info:
        hub.download("org/name", "pytorch_model.bin")
    assert "org/name" in str(info.value) and "pytorch_model.bin" in str(info.value) and "main" in str(info.value)
    with pytest.raises(RepoNotFoundError, match="'org/nothing'"):
        hub.download("org/nothing", "config.json")


def test_connection_cut_mid_body_resumes_and_the_hash_is_right(hub_env, repo_v1, caplog):
    hub_env.hub.inject("cut", host="cdn", after=1 << 20)
    caplog.set_level(logging.WARNING)
    path = hub.download("org/name", "model.safetensors")
    assert sha256(path.read_bytes()) == sha256(BIG)
    cdn = hub_env.hub.log("cdn")
    assert len(cdn) == 2 and "Range" not in cdn[0].headers
    assert cdn[1].headers["Range"].startswith("bytes=") and cdn[1].status == 206
    assert int(cdn[1].headers["Range"][6:-1]) >= 1 << 19  # resumed, not restarted
    assert "interrupted" in caplog.text


def test_connection_reset_and_5xx_are_retried(hub_env, repo_v1):
    hub_env.hub.inject("reset", host="hub", path="/api/models")
    hub_env.hub.inject("status", host="hub", path="/resolve/", code=503, times=2)
    hub_env.hub.inject("status", host="cdn", code=429, headers={"Retry-After": "0"})
    assert hub.download("org/name", "model.safetensors").read_bytes() == BIG
    assert hub_env.hub.count("hub", path="/api/") == 2 and hub_env.hub.count("cdn") == 2


def test_a_corrupt_body_is_fetched_again_or_refused(hub_env, repo_v1, caplog):
    hub_env.hub.inject("corrupt", host="cdn")
    assert hub.download("org/name", "model.safetensors").read_bytes() == BIG  # second try is clean
    assert "Discarding a bad download" in caplog.text
    hub_env.hub.commit("org/name", {"model.safetensors": BIG[::-1]}, branch="other")
    hub_env.hub.inject("corrupt", host="cdn", times=2)
    with pytest.raises(CorruptDownloadError, match="sha256"):
        hub.download("org/name", "model.safetensors", revision="other")
    blobs = sorted(p.name for p in (hub_env.cache / "models--org--name" / "blobs").iterdir())
    assert sha256(BIG[::-1]) not in blobs and not any(b.endswith(".incomplete") for b in blobs)


def test_four_processes_downloading_one_file_make_one_blob(hub_env, repo_v1):
    hub_env.hub.inject("delay", host="cdn", seconds=1.0)  # the first download is slow: the others must wait
    script = textwrap.dedent("""
        from zoo import hub
        import hashlib
        path = hub.download("org/name", "model.safetensors")
        print(hashlib.sha256(path.read_bytes()).hexdigest())
    """)
    env = {**os.environ}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {sha256(BIG)}
    blobs = list((hub_env.cache / "models--org--name" / "blobs").iterdir())
    assert [b.name for b in blobs] == [sha256(BIG)]
    assert hub_env.hub.count("cdn") == 1  # one process downloaded, three waited on the lock


def test_threads_downloading_one_file_make_one_blob(hub_env, repo_v1):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: HubRepo("org/name").require("model.safetensors"), range(4)))
    assert len({p.resolve() for p in paths}) == 1 and paths[0].read_bytes() == BIG
    assert hub_env.hub.count("cdn") == 1


def test_stopped_server_offline_and_fallback(hub_env, repo_v1, monkeypatch, caplog):
    hub.snapshot("org/name", allow_patterns=["*.json", "*.txt", "*.safetensors"])
    hub_env.hub.stop()
    forget_lookups()
    caplog.set_level(logging.WARNING)
    # fallback: the lookup fails (connection refused), the cache answers, with a single warning for both repos
    model_repo, tokenizer_repo = HubRepo("org/name"), HubRepo("org/name")
    assert model_repo.require("config.json").read_bytes() == CONFIG
    assert model_repo.require("model.safetensors").read_bytes() == BIG
    assert tokenizer_repo.require("vocab.txt").read_text().startswith("[PAD]")
    assert tokenizer_repo.get("tokenizer.json") is None  # known absent from the cached file list
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    with pytest.raises(OfflineModeError, match="onnx/model.onnx"):
        model_repo.require("onnx/model.onnx")
    # offline: no attempt at all
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.clear()
    assert hub.download("org/name", "config.json").read_bytes() == CONFIG
    assert hub.snapshot("org/name", allow_patterns="*.json").name == repo_v1
    with pytest.raises(OfflineModeError, match="zoo download org/name onnx/model.onnx"):
        hub.download("org/name", "onnx/model.onnx")
    assert not caplog.records


def test_a_hub_that_times_out_falls_back_to_the_cache(hub_env, repo_v1, monkeypatch, caplog):
    hub.download("org/name", "config.json")
    forget_lookups()
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "0.2")
    hub_env.hub.inject("delay", host="hub", path="/api/models", seconds=1.0)
    caplog.set_level(logging.WARNING)
    assert hub.download("org/name", "config.json").read_bytes() == CONFIG
    assert "Timeout" in caplog.text and "using the cached snapshot" in caplog.text


def test_progress_bars_one_per_large_file_and_one_overall(hub_env, repo_v1, monkeypatch, capsys):
    from zoo.hub import settings, transfer

    monkeypatch.setattr(settings, "progress_bars_enabled", lambda: True)
    monkeypatch.setattr(transfer, "LARGE_FILE_BYTES", 1 << 20)
    hub.snapshot("org/name", allow_patterns=["*.json", "*.safetensors"])
    err = capsys.readouterr().err
    assert "org/name (2 files)" in err and "model.safetensors" in err and "config.json" not in err


def test_unreachable_and_not_cached(hub_env, repo_v1):
    hub_env.hub.stop()
    with pytest.raises(HubUnavailableError, match="Could not reach"):
        hub.download("org/name", "config.json")


def test_private_repo_token_stays_off_the_cdn(hub_env):
    hub_env.hub.add_repo("org/private", {"config.json": CONFIG, "model.safetensors": BIG}, private=True,
                         tokens=("hf_good",))
    with pytest.raises(RepoNotFoundError, match="no token was sent"):
        hub.download("org/private", "config.json")
    with pytest.raises(AuthenticationError, match="org/private"):
        hub.download("org/private", "config.json", token="hf_bad")
    hub_env.hub.reset_log()
    assert hub.snapshot("org/private", token="hf_good").is_dir()
    assert all(r.headers.get("Authorization") == "Bearer hf_good" for r in hub_env.hub.log("hub"))
    assert hub_env.hub.count("cdn") == 1 and not any("Authorization" in r.headers for r in hub_env.hub.log("cdn"))


def test_token_from_hf_token_env(hub_env, monkeypatch):
    hub_env.hub.add_repo("org/private", {"config.json": CONFIG}, private=True, tokens=("hf_env",))
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hub.download("org/private", "config.json").read_bytes() == CONFIG


def test_gated_repo(hub_env):
    hub_env.hub.add_repo("org/gated", {"config.json": CONFIG}, gated=True, tokens=("hf_ok",))
    with pytest.raises(GatedRepoError, match="accept its conditions"):
        hub.download("org/gated", "config.json")
    assert hub.download("org/gated", "config.json", token="hf_ok").read_bytes() == CONFIG


def test_renamed_repo_redirect_on_the_hub_host(hub_env, repo_v1):
    hub_env.hub.rename("org/old-name", "org/name")
    assert hub.download("org/old-name", "config.json").read_bytes() == CONFIG
    statuses = [r.status for r in hub_env.hub.log("hub")]
    assert statuses[:2] == [307, 200]


def test_server_filenames_escaping_the_snapshot_are_refused(hub_env, tmp_path):
    hub_env.hub.add_repo("org/evil", {"config.json": CONFIG, "../../../../escape.txt": b"x", "a/../../b.txt": b"y"})
    with pytest.raises(UnsafePathError):
        hub.snapshot("org/evil")
    assert not list(tmp_path.rglob("escape.txt")) and not list(tmp_path.rglob("b.txt"))
    assert hub.download("org/evil", "config.json").read_bytes() == CONFIG  # the safe files are still usable


def test_force_download_replaces_the_blob(hub_env, repo_v1):
    path = hub.download("org/name", "model.safetensors")
    path.resolve().write_bytes(b"damaged")
    assert hub.download("org/name", "model.safetensors", force_download=True).read_bytes() == BIG
    assert hub_env.hub.count("cdn") == 2


def test_a_failing_file_stops_the_other_snapshot_downloads(hub_env):
    big = {f"shard-{i}.safetensors": os.urandom(2 << 20) for i in range(3)}
    hub_env.hub.add_repo("org/shards", {**big, "config.json": CONFIG})
    hub_env.hub.inject("status", host="hub", path="config.json", code=404, times=1)
    hub_env.hub.inject("delay", host="cdn", seconds=0.3, times=3)
    with pytest.raises(EntryNotFoundError):
        hub.snapshot("org/shards")
    snapshot = next((hub_env.cache / "models--org--shards" / "snapshots").iterdir())
    assert not (snapshot / "config.json").exists()
    forget_lookups()
    folder = hub.snapshot("org/shards")  # the next try finishes the job
    assert all((folder / name).read_bytes() == data for name, data in big.items())


def test_file_names_that_need_quoting(hub_env):
    name = "sub dir/weird name #1 ü?.json"
    hub_env.hub.add_repo("org/quoted", {name: b"{}"})
    assert hub.download("org/quoted", name).read_bytes() == b"{}"
    assert hub.snapshot("org/quoted").joinpath(*name.split("/")).is_file()
