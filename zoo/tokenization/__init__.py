"""Tokenizers over the Rust ``tokenizers`` library: one :class:`Tokenizer` class for every architecture, with
transformers' fast-tokenizer API (tokenization_utils_base.py, tokenization_utils_tokenizers.py).

The package, one idea per module:

- ``base``: :class:`Tokenizer` itself: loading (``from_repo``), vocabulary, ``__call__`` / ``encode`` / ``decode``,
  ``pad``, chat templates, ``save_pretrained``;
- ``special_tokens``: settable ``pad_token`` & co., extra special tokens, ``add_tokens`` / ``add_special_tokens``;
- ``inputs``: which arguments are a text, a pair or a batch, and which padding and truncation a call asks for;
- ``encoding``: :class:`BatchEncoding` and the padding of finished encodings;
- ``files``: the files of a tokenizer folder, read and written atomically.

Every name importable from ``zoo.tokenization`` before it became a package still is.
"""

from __future__ import annotations

from zoo.tokenization.base import Tokenizer, clean_up_tokenization
from zoo.tokenization.encoding import BatchEncoding, _as_list, _to_tensor, pad_encodings
from zoo.tokenization.files import (ADDED_TOKENS_FILE, SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE,
                                    VERY_LARGE_INTEGER, _json_ok, _legacy_added_tokens, _write_files_atomic)
from zoo.tokenization.inputs import PADDING as _PADDING
from zoo.tokenization.inputs import TRUNCATION as _TRUNCATION
from zoo.tokenization.inputs import is_batch as _is_batch
from zoo.tokenization.inputs import is_key as _is_key
from zoo.tokenization.special_tokens import SPECIAL_TOKEN_NAMES, _added_token, _token_content

__all__ = [
    "ADDED_TOKENS_FILE", "SPECIAL_TOKENS_MAP_FILE", "SPECIAL_TOKEN_NAMES", "TOKENIZER_CONFIG_FILE", "TOKENIZER_FILE",
    "VERY_LARGE_INTEGER", "BatchEncoding", "Tokenizer", "clean_up_tokenization", "pad_encodings",
]
