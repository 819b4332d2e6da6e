"""The hub's verbs: `zoo download`, `zoo cache ls|rm|verify` (through zoo.hub.cli.add_commands)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from zoo.hub.cli import add_commands
from zoo.hub.manage import delete_from_cache, scan_cache, verify_cache

FILES = {"config.json": b'{"model_type": "bert"}', "vocab.txt": b"[PAD]\n", "model.safetensors": os.urandom(1 << 20)}


def zoo(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="zoo")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def two_revisions(hub_env):
    v1 = hub_env.hub.add_repo("org/name", FILES, tags=("v1",))
    v2 = hub_env.hub.commit("org/name", {**FILES, "config.json": b'{"model_type": "bert", "v": 2}'})
    return v1, v2


def test_download_files_and_patterns(hub_env, two_revisions, capsys):
    v1, v2 = two_revisions
    assert zoo("download", "org/name", "config.json", "vocab.txt", "--revision", "v1") == 0
    lines = capsys.readouterr().out.split()
    assert lines == [str(hub_env.cache / "models--org--name" / "snapshots" / v1 / n) for n in ("config.json", "vocab.txt")]
    assert zoo("download", "org/name", "--include", "*.json", "--include", "*.txt") == 0
    folder = capsys.readouterr().out.strip()
    assert folder.endswith(v2) and sorted(os.listdir(folder)) == ["config.json", "vocab.txt"]
    assert zoo("download", "org/name", "--exclude", "*.txt", "--cache-dir", str(hub_env.cache / "other")) == 0
    assert sorted(os.listdir(capsys.readouterr().out.strip())) == ["config.json", "model.safetensors"]


def test_cache_ls_rm(hub_env, two_revisions, capsys):
    v1, v2 = two_revisions
    zoo("download", "org/name", "--revision", "v1")
    zoo("download", "org/name")
    capsys.readouterr()
    assert zoo("cache", "ls") == 0
    out = capsys.readouterr().out
    assert "org/name" in out and v1[:12] in out and v2[:12] in out and "1.0M" in out and "v1" in out
    (repo,) = scan_cache()
    assert {r.commit for r in repo.revisions} == {v1, v2}
    # removing v1 frees only its own config.json; the shared weights stay for v2
    assert zoo("cache", "rm", "org/name", "--revision", v1[:12]) == 0
    assert "22B freed" in capsys.readouterr().out
    (repo,) = scan_cache()
    assert [r.commit for r in repo.revisions] == [v2]
    assert not (hub_env.cache / "models--org--name" / "refs" / "v1").exists()
    assert zoo("cache", "rm", "org/name") == 0
    assert scan_cache() == []
    assert zoo("cache", "ls") == 0 and "empty" in capsys.readouterr().out


def test_cache_rm_unknown(hub_env, two_revisions):
    from zoo.errors import RepoNotFoundError, RevisionNotFoundError

    with pytest.raises(RepoNotFoundError, match="not in the cache"):
        delete_from_cache("org/none")
    zoo("download", "org/name", "config.json")
    with pytest.raises(RevisionNotFoundError, match="no cached revision"):
        delete_from_cache("org/name", revision="v1")


def test_cache_verify_finds_corrupt_and_missing_blobs(hub_env, two_revisions, capsys):
    zoo("download", "org/name")
    capsys.readouterr()
    assert zoo("cache", "verify") == 0
    assert "all 3 blob(s) match" in capsys.readouterr().out
    snapshot = hub_env.cache / "models--org--name" / "snapshots" / two_revisions[1]
    weights = (snapshot / "model.safetensors").resolve()
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    (snapshot / "vocab.txt").resolve().unlink()
    assert zoo("cache", "verify") == 1
    out = capsys.readouterr().out
    assert "CORRUPT" in out and weights.name in out and "model.safetensors" in out
    assert "MISSING" in out and "vocab.txt" in out
    statuses = sorted(c.status for c in verify_cache())
    assert statuses == ["corrupt", "missing", "ok"]
    # the fix the report suggests
    assert zoo("download", "org/name", "--force") == 0
    assert sorted(c.status for c in verify_cache()) == ["ok", "ok", "ok"]


def test_zoo_command_wires_the_verbs(hub_env, two_revisions):
    result = subprocess.run([sys.executable, "-m", "zoo", "download", "org/name", "config.json"], capture_output=True,
                            text=True, env={**os.environ}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("config.json")
    result = subprocess.run([sys.executable, "-m", "zoo", "download", "org/nothing"], capture_output=True, text=True,
                            env={**os.environ}, timeout=60)
    assert result.returncode == 1 and "org/nothing" in result.stderr and "Traceback" not in result.stderr
