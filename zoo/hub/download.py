"""Public entry points: :func:`download` one file, :func:`snapshot` a repo, into the cache shared with huggingface_hub.

    from zoo import hub
    path = hub.download("bert-base-uncased", "config.json", revision="main")
    folder = hub.snapshot("org/name", revision="v1.0", allow_patterns=["*.json", "*.safetensors"])

Both return paths inside ``snapshots/<commit>/`` of the cache (see zoo.hub.cache for the layout). Counterparts of
huggingface_hub's ``hf_hub_download`` and ``snapshot_download``; see zoo.hub.repo for how requests are kept few.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from zoo.hub.repo import HubRepo

__all__ = ["download", "snapshot"]


def download(repo_id: str, filename: str, revision: str | None = None, *, token: str | bool | None = None,
             cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool = False,
             force_download: bool = False, endpoint: str | None = None) -> Path:
    """Path of ``filename`` of ``repo_id`` at ``revision`` in the cache, downloading it if it is not there.

    ``revision``: branch, tag or full commit sha (default ``main``). ``token``: a Hub token (default ``HF_TOKEN`` or
    the saved login; ``False`` sends none). ``local_files_only``: no network, like ``HF_HUB_OFFLINE=1``.
    Raises EntryNotFoundError if the revision has no such file, OfflineModeError if offline and not cached.
    """
    repo = HubRepo(repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
                   force_download=force_download, endpoint=endpoint)
    return repo.require(filename)


def snapshot(repo_id: str, revision: str | None = None, allow_patterns: str | Iterable[str] | None = None,
             ignore_patterns: str | Iterable[str] | None = None, *, token: str | bool | None = None,
             cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool = False,
             force_download: bool = False, endpoint: str | None = None, max_workers: int = 8) -> Path:
    """The snapshot folder of ``repo_id`` at ``revision`` with every file matching the patterns downloaded.

    Patterns are fnmatch globs on repo paths (``"*.json"``, ``"onnx/"`` for a folder), as in huggingface_hub.
    Files are fetched in ``max_workers`` parallel threads, with an overall progress bar.
    """
    repo = HubRepo(repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
                   force_download=force_download, endpoint=endpoint)
    return repo.snapshot(allow_patterns=allow_patterns, ignore_patterns=ignore_patterns, max_workers=max_workers)
