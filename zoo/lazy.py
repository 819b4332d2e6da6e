"""One lazy-attribute mechanism for zoo's packages (PEP 562 module ``__getattr__`` / ``__dir__``).

A package that must stay cheap to import (no torch, numpy, onnx or h5py until a name is used) lists its public names
and the modules defining them; the first access imports that module and caches the value in the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps each lazy name to the module defining it, and
    ``namespace`` is the package's ``globals()``, where a resolved value is kept so later accesses are plain."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
