"""Where the hub client talks to and where it keeps files: endpoint, token, cache folder, offline mode, progress.

Every value is read from the environment at call time (not import time), so a test or a long-running program that
changes ``os.environ`` sees the change. The variables are huggingface_hub's own (see its ``constants.py``), plus
``ZOO_*`` overrides, so zoo and huggingface_hub agree on one cache and one login by default.

=============================== =================================================================================
``ZOO_ENDPOINT`` / ``HF_ENDPOINT``  Hub URL, first one set wins; default https://huggingface.co
``ZOO_CACHE``                   cache folder, above ``HF_HUB_CACHE`` > ``HUGGINGFACE_HUB_CACHE`` > ``$HF_HOME/hub``
``HF_HOME``                     default ``$XDG_CACHE_HOME/huggingface`` or ``~/.cache/huggingface``
``HF_TOKEN``                    token; else the file ``HF_TOKEN_PATH`` or ``$HF_HOME/token`` (``hf auth login``);
                                ``HF_HUB_DISABLE_IMPLICIT_TOKEN=1``: only when passed explicitly
``ZOO_OFFLINE`` / ``HF_HUB_OFFLINE``  ``1``: no network at all, answer from the cache
``HF_HUB_DISABLE_PROGRESS_BARS``  ``1``: no tqdm bars (they are also off when stderr is not a terminal)
``HF_HUB_ETAG_TIMEOUT`` / ``HF_HUB_DOWNLOAD_TIMEOUT``  seconds to wait for metadata / download data (10)
``ZOO_STALL_TIMEOUT``           seconds a download may go without progress, over all its retries, before it
                                gives up (120)
=============================== =================================================================================
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
_TRUE = {"1", "ON", "YES", "TRUE"}


def _is_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in _TRUE


def _expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))


def hf_home() -> Path:
    default = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return _expand(os.environ.get("HF_HOME") or default)


def endpoint(override: str | None = None) -> str:
    """The Hub base URL, without a trailing slash."""
    value = override or os.environ.get("ZOO_ENDPOINT") or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    return value.rstrip("/")


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache root (the folder that holds ``models--org--name``), shared with huggingface_hub by default."""
    if override is not None:
        return _expand(os.fspath(override))
    for name in ("ZOO_CACHE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return _expand(os.environ[name])
    return hf_home() / "hub"


def offline(local_files_only: bool = False) -> bool:
    """Whether no request at all may be made."""
    return bool(local_files_only) or _is_true("ZOO_OFFLINE") or _is_true("HF_HUB_OFFLINE")


def token(explicit: str | bool | None = None) -> str | None:
    """The token to send: the argument, else ``HF_TOKEN``, else the token file huggingface_hub writes.

    ``token=False`` sends none; ``HF_HUB_DISABLE_IMPLICIT_TOKEN=1`` sends one only when asked (a string, or
    ``token=True`` for the saved one). The value is never logged.
    """
    if explicit is False:
        return None
    if isinstance(explicit, str) and explicit.strip():
        return explicit.strip()
    if explicit is None and _is_true("HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        return None
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    path = _expand(os.environ["HF_TOKEN_PATH"]) if os.environ.get("HF_TOKEN_PATH") else hf_home() / "token"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def progress_bars_enabled() -> bool:
    if _is_true("HF_HUB_DISABLE_PROGRESS_BARS"):
        return False
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


def metadata_timeout() -> float:
    return _seconds("HF_HUB_ETAG_TIMEOUT", 10.0)


def download_timeout() -> float:
    return _seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10.0)


def stall_timeout() -> float:
    """Seconds a piece of work (a download and all its retries) may go without progress before it gives up."""
    return _seconds("ZOO_STALL_TIMEOUT", 120.0)
