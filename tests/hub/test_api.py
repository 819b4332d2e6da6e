"""The public surface: `from zoo import hub; hub.download / hub.snapshot`, a cheap `import zoo.hub`, the cache
layout helpers."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from zoo.errors import InvalidRepoIdError, UnsafePathError
from zoo.hub.cache import BlobHasher, RemoteFile, RepoCache, repo_folder_name, validate_repo_id


def test_import_is_cheap_and_download_is_the_function():
    code = (
        "import sys, zoo.hub\n"
        "assert 'requests' not in sys.modules and 'tqdm' not in sys.modules, 'heavy import'\n"
        "import zoo.hub.download, zoo.hub.repo\n"
        "assert 'requests' not in sys.modules, 'requests imported before any request'\n"
        "from zoo import hub\n"
        "assert callable(hub.download) and hub.download.__name__ == 'download', hub.download\n"
        "assert hub.snapshot.__name__ == 'snapshot' and hub.HubRepo.__name__ == 'HubRepo'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_repo_ids():
    assert validate_repo_id("bert-base-uncased") and validate_repo_id("org/name.v2_x")
    for bad in ("a/b/c", "org--x/y", "org/../x", "/abs", "", "org/", "x" * 97):
        with pytest.raises(InvalidRepoIdError):
            validate_repo_id(bad)
    assert repo_folder_name("org/name") == "models--org--name"
    assert repo_folder_name("gpt2") == "models--gpt2"


def test_blob_hashes_match_git_and_lfs():
    data = b"hello\n"
    git = BlobHasher.for_etag("ce013625030ba8dba906f756967f9e9ca394464a", len(data))  # `git hash-object` of hello\n
    git.update(data)
    assert git.kind == "git-sha1" and git.matches()
    lfs = BlobHasher.for_etag(hashlib.sha256(data).hexdigest(), len(data))
    lfs.update(data)
    assert lfs.kind == "sha256" and lfs.matches()
    assert BlobHasher.for_etag("not-a-hash", 1).kind is None


def test_tree_file_is_huggingface_hubs(tmp_path):
    from huggingface_hub._tree_cache import read_tree_cache

    cache = RepoCache(tmp_path, "org/name")
    files = {"a.json": RemoteFile("a.json", 3, "1" * 40), "w.bin": RemoteFile("w.bin", 10, "2" * 40, "3" * 64)}
    cache.write_tree("4" * 40, files)
    theirs = read_tree_cache(str(cache.folder), "4" * 40)
    assert theirs["w.bin"].lfs_sha256 == "3" * 64 and theirs["w.bin"].lfs_size == 10 and theirs["a.json"].size == 3
    assert cache.read_tree("4" * 40) == files


def test_links_are_relative_and_refuse_escaping_folders(tmp_path):
    cache = RepoCache(tmp_path, "org/name")
    cache.blobs.mkdir(parents=True)
    (cache.blobs / ("1" * 40)).write_text("x")
    link = cache.link("5" * 40, "a/b/c.txt", "1" * 40)
    assert str(link.readlink()) == "../../../../blobs/" + "1" * 40 and link.read_text() == "x"
    outside = tmp_path / "outside"
    outside.mkdir()
    (cache.snapshot_dir("5" * 40) / "sneaky").symlink_to(outside)
    with pytest.raises(UnsafePathError):
        cache.link("5" * 40, "sneaky/file.txt", "1" * 40)
    assert not any(outside.iterdir())
