"""HubRepo's request budget: nothing at construction, one revision lookup per repo (not a HEAD per file), one
download per missing file, nothing at all for a cached commit; and from_pretrained over the fake Hub."""

from __future__ import annotations

import logging

import pytest

from zoo.hub import repo_files
from zoo.hub.repo import HubRepo, forget_lookups

FILES = {
    "config.json": b'{"model_type": "bert"}',
    "tokenizer_config.json": b'{"do_lower_case": true}',
    "special_tokens_map.json": b"{}",
    "tokenizer.json": b'{"version": "1.0"}',
    "vocab.txt": b"[PAD]\n[UNK]\n",
    "model.safetensors": bytes(2 << 20),
    "README.md": b"# card",
}


def load_like_from_pretrained(repo):
    """What a model + tokenizer load asks of its RepoFiles (optional files probed, required ones fetched)."""
    repo.require("config.json")
    for name in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        if repo.exists(name):
            repo.require(name)
    repo.require("tokenizer.json")
    assert repo.get("model.safetensors.index.json") is None
    return repo.require("model.safetensors")


def resolve_gets(hub):
    return [r for r in hub.log("hub") if "/resolve/" in r.path and r.method == "GET"]


def test_construction_sends_nothing(hub_env):
    hub_env.hub.add_repo("org/name", FILES)
    repo = repo_files("org/name", revision="main")
    assert isinstance(repo, HubRepo) and repo.identifier == "org/name"
    assert hub_env.hub.log() == []


def test_cold_then_warm_request_counts(hub_env):
    sha = hub_env.hub.add_repo("org/name", FILES)
    load_like_from_pretrained(HubRepo("org/name"))
    # cold: the lookup plus one download per needed file (the LFS one is redirected to the CDN)
    assert hub_env.hub.count("hub", path="/api/") == 1
    assert sorted(r.path.rsplit("/", 1)[-1] for r in resolve_gets(hub_env.hub)) == \
        ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert hub_env.hub.count("cdn") == 1
    assert hub_env.hub.count(method="HEAD") == 0
    # warm, as in a new process: one request for the whole repo
    forget_lookups()
    hub_env.hub.reset_log()
    path = load_like_from_pretrained(HubRepo("org/name"))
    assert [r.path for r in hub_env.hub.log()] == ["/api/models/org/name/revision/main"]
    assert path.read_bytes() == FILES["model.safetensors"]
    # warm at a pinned commit: nothing at all
    forget_lookups()
    hub_env.hub.reset_log()
    load_like_from_pretrained(HubRepo("org/name", revision=sha))
    assert hub_env.hub.log() == []


def test_model_then_tokenizer_share_one_lookup(hub_env):
    hub_env.hub.add_repo("org/name", FILES)
    HubRepo("org/name").require("config.json")  # the model's repo
    HubRepo("org/name").require("tokenizer.json")  # the tokenizer's, a moment later
    assert hub_env.hub.count("hub", path="/api/") == 1


def test_lookup_memory_expires(hub_env, monkeypatch):
    from zoo.hub import repo as repo_module

    hub_env.hub.add_repo("org/name", FILES)
    HubRepo("org/name").commit
    monkeypatch.setattr(repo_module, "LOOKUP_TTL_S", 0.0)
    new = hub_env.hub.commit("org/name", {"config.json": b"{}"})
    assert HubRepo("org/name").commit == new
    assert hub_env.hub.count("hub", path="/api/") == 2


def test_absent_files_are_remembered_in_no_exist(hub_env):
    sha = hub_env.hub.add_repo("org/name", FILES)
    assert HubRepo("org/name").get("added_tokens.json") is None
    marker = hub_env.cache / "models--org--name" / ".no_exist" / sha / "added_tokens.json"
    assert marker.is_file()
    hub_env.hub.reset_log()
    assert HubRepo("org/name", revision=sha).get("added_tokens.json") is None
    assert hub_env.hub.log() == []


@pytest.fixture
def minilm_repo(hub_env, minilm):
    pytest.importorskip("zoo.auto")
    return hub_env.hub.add_folder("sentence-transformers/all-MiniLM-L6-v2", minilm)


def test_from_pretrained_over_the_hub(hub_env, minilm_repo, minilm, monkeypatch, caplog):
    import zoo

    repo_id = "sentence-transformers/all-MiniLM-L6-v2"
    model = zoo.AutoModel.from_pretrained(repo_id)
    tokenizer = zoo.AutoTokenizer.from_pretrained(repo_id)
    cold = len(hub_env.hub.log("hub"))
    lookups = hub_env.hub.count("hub", path="/api/")
    assert lookups == 1 and cold == 1 + len(resolve_gets(hub_env.hub))
    assert hub_env.hub.count(method="HEAD") == 0
    # warm, as in a new process
    forget_lookups()
    hub_env.hub.reset_log()
    zoo.AutoModel.from_pretrained(repo_id)
    zoo.AutoTokenizer.from_pretrained(repo_id)
    assert len(hub_env.hub.log()) == 1
    # the same weights and vocabulary as the local folder
    local = zoo.AutoModel.from_pretrained(str(minilm))
    assert all((a == b).all() for a, b in zip(model.state_dict().values(), local.state_dict().values()))
    assert tokenizer("hello world")["input_ids"] == zoo.AutoTokenizer.from_pretrained(str(minilm))("hello world")["input_ids"]
    # server gone: fallback with one warning, then offline with no attempt
    hub_env.hub.stop()
    forget_lookups()
    caplog.set_level(logging.WARNING, logger="zoo.hub")
    zoo.AutoModel.from_pretrained(repo_id)
    zoo.AutoTokenizer.from_pretrained(repo_id)
    assert len([r for r in caplog.records if r.name.startswith("zoo.hub")]) == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    forget_lookups()
    caplog.clear()
    zoo.AutoModel.from_pretrained(repo_id)
    zoo.AutoTokenizer.from_pretrained(repo_id, local_files_only=True)
    assert not [r for r in caplog.records if r.name.startswith("zoo.hub")]


def test_a_remembered_lookup_still_fills_another_cache_dir(hub_env, tmp_path, monkeypatch):
    sha = hub_env.hub.add_repo("org/name", FILES)
    HubRepo("org/name").require("config.json")
    other = tmp_path / "other-cache"
    HubRepo("org/name", cache_dir=other).require("config.json")  # answered from the remembered lookup
    assert hub_env.hub.count("hub", path="/api/") == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert HubRepo("org/name", cache_dir=other).commit == sha  # refs/main was written there too
