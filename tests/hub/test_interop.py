"""One cache for zoo and huggingface_hub, both ways, with huggingface_hub pointed at the fake Hub via HF_ENDPOINT.

huggingface_hub reads its settings at import time, so its downloads run in a subprocess with their own environment;
its cache readers (try_to_load_from_cache, scan_cache_dir) take the folder as an argument and run in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from zoo import hub
from zoo.hub.repo import HubRepo, forget_lookups

huggingface_hub = pytest.importorskip("huggingface_hub")

FILES = {
    "config.json": b'{"model_type": "bert"}',
    "vocab.txt": b"[PAD]\n[UNK]\n",
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "model.safetensors": os.urandom(2 << 20),
}


def run_huggingface_hub(hub_env, code: str, offline: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub_env.endpoint, HF_HUB_CACHE=str(hub_env.cache), HF_HOME=str(hub_env.cache.parent),
               HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_UPDATE_CHECK="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    prelude = "import json, huggingface_hub as h\n"
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_cache_written_by_zoo_is_read_by_huggingface_hub(hub_env):
    sha = hub_env.hub.add_repo("org/name", FILES)
    folder = hub.snapshot("org/name")
    assert HubRepo("org/name").get("added_tokens.json") is None  # leaves a .no_exist marker
    cache = hub_env.cache
    # in-process readers
    for name in FILES:
        assert huggingface_hub.try_to_load_from_cache("org/name", name, cache_dir=cache) == str(folder / name)
    from huggingface_hub.file_download import _CACHED_NO_EXIST

    assert huggingface_hub.try_to_load_from_cache("org/name", "added_tokens.json", cache_dir=cache) is _CACHED_NO_EXIST
    info = huggingface_hub.scan_cache_dir(cache)
    assert info.warnings == []
    (repo,) = info.repos
    assert repo.repo_id == "org/name" and repo.nb_files == len(FILES)
    (revision,) = repo.revisions
    assert revision.commit_hash == sha and revision.refs == frozenset({"main"})
    assert repo.size_on_disk == sum(len(v) for v in FILES.values())
    # huggingface_hub online: finds everything cached and downloads nothing
    hub_env.hub.reset_log()
    out = run_huggingface_hub(hub_env, """
        paths = [h.hf_hub_download("org/name", n) for n in ("config.json", "model.safetensors")]
        print(json.dumps({"paths": paths, "snapshot": h.snapshot_download("org/name")}))
    """)
    assert out["paths"] == [str(folder / "config.json"), str(folder / "model.safetensors")]
    assert out["snapshot"] == str(folder)
    assert hub_env.hub.count("cdn") == 0 and hub_env.hub.count("hub", method="GET", path="/resolve/") == 0
    # huggingface_hub offline
    out = run_huggingface_hub(hub_env, """
        print(json.dumps({"path": h.hf_hub_download("org/name", "1_Pooling/config.json")}))
    """, offline=True)
    assert out["path"] == str(folder / "1_Pooling" / "config.json")


def test_a_cache_written_by_huggingface_hub_is_read_by_zoo(hub_env, monkeypatch):
    sha = hub_env.hub.add_repo("org/name", FILES, tags=("v1",))
    out = run_huggingface_hub(hub_env, """
        print(json.dumps({"snapshot": h.snapshot_download("org/name", revision="v1"),
                          "config": h.hf_hub_download("org/name", "config.json")}))
    """)
    assert out["snapshot"].endswith(sha)
    hub_env.hub.reset_log()
    # zoo offline: every file from huggingface_hub's download, no request
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, data in FILES.items():
        path = hub.download("org/name", name, revision="v1")
        assert str(path) == os.path.join(out["snapshot"], name) and path.read_bytes() == data
    assert str(hub.download("org/name", "config.json")) == out["config"]
    assert hub_env.hub.log() == []
    # zoo online: one lookup, nothing downloaded
    monkeypatch.delenv("HF_HUB_OFFLINE")
    forget_lookups()
    assert str(hub.snapshot("org/name")) == out["snapshot"]
    assert [r.path for r in hub_env.hub.log()] == ["/api/models/org/name/revision/main"]


def test_zoo_and_huggingface_hub_lock_the_same_file(hub_env):
    from zoo.hub.cache import RepoCache

    etag = "0" * 64
    ours = RepoCache(hub_env.cache, "org/name").lock_path(etag)
    assert ours == hub_env.cache / ".locks" / "models--org--name" / f"{etag}.lock"  # huggingface_hub's lock path


def test_huggingface_hub_offline_reads_a_snapshot_zoo_filled_partially(hub_env):
    sha = hub_env.hub.add_repo("org/name", FILES)
    config = hub.download("org/name", "config.json")
    # a cached file list would tell huggingface_hub the snapshot is complete: zoo writes none for a partial one
    assert not (hub_env.cache / "models--org--name" / "trees").exists()
    out = run_huggingface_hub(hub_env, """
        print(json.dumps({"snapshot": h.snapshot_download("org/name"),
                          "config": h.hf_hub_download("org/name", "config.json")}))
    """, offline=True)
    assert out == {"snapshot": str(config.parent), "config": str(config)}
    # once zoo has the whole snapshot it writes the list, and huggingface_hub reads it as its own
    folder = hub.snapshot("org/name")
    from huggingface_hub._tree_cache import read_tree_cache

    tree = read_tree_cache(str(hub_env.cache / "models--org--name"), sha)
    assert sorted(tree) == sorted(FILES) and tree["model.safetensors"].lfs_sha256 is not None
    out = run_huggingface_hub(hub_env, """
        print(json.dumps({"snapshot": h.snapshot_download("org/name"), "tree": len(h.get_cached_repo_tree("org/name"))}))
    """, offline=True)
    assert out == {"snapshot": str(folder), "tree": len(FILES)}
