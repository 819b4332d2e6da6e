"""The Hub client: Hugging Face Hub HTTP protocol, huggingface_hub's cache layout, offline mode.

``download`` / ``snapshot`` fetch files into the cache shared with huggingface_hub; ``repo_files`` gives the Auto
layer one view of a local folder or a Hub repo. Heavy modules load on first use: ``import zoo.hub`` imports neither
requests nor tqdm.

``zoo.hub.download`` is the function; its module is ``sys.modules["zoo.hub.download"]`` (import names from it with
``from zoo.hub.download import ...``).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from zoo.hub.files import LocalFolder, RepoFiles, locate, repo_files
from zoo.lazy import lazy_exports

__all__ = ["HubRepo", "LocalFolder", "RepoFiles", "download", "locate", "repo_files", "snapshot"]

_LAZY = {"download": "zoo.hub.download", "snapshot": "zoo.hub.download", "HubRepo": "zoo.hub.repo"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


class _HubModule(types.ModuleType):
    """Keeps ``zoo.hub.download`` the function: importing the submodule of the same name must not replace it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "download" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _HubModule
