"""RoBERTa's byte-level BPE tokenizer (GPT-2's vocabulary scheme with ``<s> A </s></s> B </s>`` framing).

The pipeline is the one transformers builds for RobertaTokenizer (tokenization_roberta.py): a BPE model over
vocab.json + merges.txt (no continuing-subword prefix, no end-of-word suffix, no unk fusing), the ByteLevel
pre-tokenizer and decoder, and RobertaProcessing with ``trim_offsets``. Like transformers, the pipeline follows
``add_prefix_space`` / ``trim_offsets`` from tokenizer_config.json (or the call's keyword arguments) even when the
repo ships a tokenizer.json, whose vocabulary, merges and added tokens are used as they are.

Added-token flags come from the files: ``<mask>`` strips the space before it (``lstrip``) when tokenizer.json,
``added_tokens_decoder`` or a dict-valued ``mask_token`` says so, as the published RoBERTa files do.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import TokenizerError
from zoo.tokenization import SPECIAL_TOKEN_NAMES, TOKENIZER_FILE, Tokenizer, _token_content
from zoo.tokenization.files import read_bpe_vocabulary

DEFAULTS: dict[str, Any] = {
    "tokenizer_class": "RobertaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "add_prefix_space": False,
    "trim_offsets": True,
    "model_input_names": ["input_ids", "attention_mask"],
}

_ADDED_TOKEN_FLAGS = ("single_word", "lstrip", "rstrip", "normalized", "special")


class RobertaTokenizer(Tokenizer):
    """RoBERTa's byte-level BPE tokenizer: ``zoo.RobertaTokenizer.from_pretrained(path)`` builds it with RoBERTa's
    defaults, whatever model_type the folder's config.json names."""

    model_type = "roberta"


def _added_tokens(settings: dict[str, Any]) -> list[Any]:
    """The added tokens the settings describe, with their flags: added_tokens_decoder (in id order), then each
    special token (a dict value carries flags; a plain string is a special, unnormalized token)."""
    from tokenizers import AddedToken

    described: dict[str, dict[str, Any]] = {}
    decoder = settings.get("added_tokens_decoder") or {}
    for _, entry in sorted(decoder.items(), key=lambda item: int(item[0])):
        if isinstance(entry, dict) and entry.get("content"):
            described[entry["content"]] = entry
    for name in SPECIAL_TOKEN_NAMES:
        value = settings.get(name)
        content = _token_content(value)
        if content is None:
            continue
        entry = value if isinstance(value, dict) else described.get(content, {})
        described[content] = {**entry, "content": content, "special": True}
    tokens = []
    for content, entry in described.items():
        flags = {k: bool(entry[k]) for k in _ADDED_TOKEN_FLAGS if k in entry and entry[k] is not None}
        flags.setdefault("special", False)
        flags.setdefault("normalized", not flags["special"])
        tokens.append(AddedToken(content, **flags))
    return tokens


def build_byte_level_bpe(repo: Any, settings: dict[str, Any]) -> Any:
    """A ``tokenizers.Tokenizer`` from vocab.json + merges.txt and the tokenizer settings."""
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import BPE

    vocab, merges = read_bpe_vocabulary(repo, "a RoBERTa tokenizer")
    backend = Backend(BPE(vocab, merges, dropout=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tokens = _added_tokens(settings)
    backend.add_special_tokens([t for t in tokens if t.special])
    backend.add_tokens([t for t in tokens if not t.special])
    return configure(backend, settings)


def configure(backend: Any, settings: dict[str, Any]) -> Any:
    """Set RoBERTa's pre-tokenizer, decoder and post-processor on ``backend`` from the settings."""
    from tokenizers import decoders, pre_tokenizers, processors

    add_prefix_space = bool(settings.get("add_prefix_space", False))
    trim_offsets = bool(settings.get("trim_offsets", True))
    cls, sep = _token_content(settings.get("cls_token")), _token_content(settings.get("sep_token"))
    if cls is None or sep is None:
        raise TokenizerError(f"a RoBERTa tokenizer frames text with cls_token and sep_token, but got cls_token={cls!r}, "
                             f"sep_token={sep!r}; set both in tokenizer_config.json (RoBERTa's are '<s>' and '</s>')")
    ids = {token: backend.token_to_id(token) for token in (cls, sep)}
    assert None not in ids.values(), "special tokens are added to the backend before it is configured"
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.RobertaProcessing((sep, ids[sep]), (cls, ids[cls]), trim_offsets=trim_offsets,
                                                          add_prefix_space=add_prefix_space)
    return backend


def from_files(repo: Any, config: Any = None, **kwargs: Any) -> Tokenizer:
    """The tokenizer factory the RoBERTa plugin registers."""
    tokenizer = RobertaTokenizer.from_repo(repo, build=build_byte_level_bpe, defaults=DEFAULTS, **kwargs)
    if repo.exists(TOKENIZER_FILE):  # its pipeline yields to the settings, as in transformers
        configure(tokenizer.backend_tokenizer, tokenizer.init_kwargs)
    return tokenizer
