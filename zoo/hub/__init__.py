"""The Hub client: Hugging Face Hub HTTP protocol, huggingface_hub's cache layout, offline mode.

``download`` / ``snapshot`` fetch files into the cache shared with huggingface_hub; ``repo_files`` gives the Auto
layer one view of a local folder or a Hub repo. Heavy modules (requests, the cache code) load on first use.
"""

from __future__ import annotations

from typing import Any

from zoo.hub.files import LocalFolder, RepoFiles, locate, repo_files

__all__ = ["LocalFolder", "RepoFiles", "locate", "repo_files"]


def __getattr__(name: str) -> Any:
    import importlib

    for module in ("zoo.hub.download",):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            break
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module 'zoo.hub' has no attribute {name!r}")
