"""Keeping secrets out of log lines and messages: signed CDN query strings and Hub tokens.

The Hub redirects LFS downloads to CDN URLs whose query string is a signature (``X-Amz-Signature=...``, as
huggingface_hub's ``file_download.py`` sees them), and requests to the Hub carry ``Authorization: Bearer hf_...``.
zoo's own log calls already log URLs without their query, but at DEBUG level urllib3's connection pool logs every
request line, query included (``urllib3/connectionpool.py``: ``"GET /path?query HTTP/1.1" 200``), and an exception
text may quote a URL. A :class:`RedactingFilter` on those loggers rewrites each record before any handler sees it;
:func:`install` puts it in place once, when the hub client is first imported.
"""

from __future__ import annotations

import logging
import re
import threading

# A '?' followed by a query, inside a URL or a request line, up to whitespace or a quote/bracket that ends it.
_QUERY = re.compile(r"(?<=[^\s?])\?[^\s'\"<>)\]]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s'\",]+")
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{4,}")
REDACTED_QUERY = "?..."

# The loggers zoo's downloads write through. A filter on a logger applies only to records logged on that very logger
# (not to those of its children that propagate), so each one is named.
LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.response",
    "urllib3.util.retry",
    "urllib3",
    "requests",
    "filelock",
    "zoo.hub.client",
    "zoo.hub.transfer",
    "zoo.hub.repo",
    "zoo.hub.cache",
    "zoo.hub.manage",
    "zoo.hub.files",
)

_installed = False
_install_lock = threading.Lock()


def redact(text: str) -> str:
    """``text`` without URL query strings and without tokens (``Bearer ...``, ``hf_...``)."""
    if "?" in text:
        text = _QUERY.sub(REDACTED_QUERY, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1 ***", text)
    if "hf_" in text:
        text = _HF_TOKEN.sub("hf_***", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with :func:`redact` (and drops the arguments it was formatted from)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error reporting
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # The traceback text quotes the exception, which may quote a signed URL: format it now, redacted.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install() -> None:
    """Put one :class:`RedactingFilter` on each logger in :data:`LOGGERS` (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactingFilter) for f in logger.filters):
                logger.addFilter(RedactingFilter())
        _installed = True
