"""BERT's WordPiece tokenizer, built in ``tokenizers`` from vocab.txt when a repo has no tokenizer.json.

The pipeline is the one transformers builds for BertTokenizer (tokenization_bert.py): BertNormalizer (clean text,
CJK spacing, accents, lowercase), BertPreTokenizer, WordPiece with ``##`` continuations, and the
``[CLS] A [SEP] B [SEP]`` template with token types 0/1. A tokenizer.json is used as saved, except that, as
transformers rebuilds them on loading, its normalizer follows the lowercasing/accent settings written down
(``align_normalizer``) and its unknown token and template follow the named special tokens
(``frame_with_special_tokens``).
"""

from __future__ import annotations

from typing import Any

from zoo.errors import TokenizerError
from zoo.tokenization import TOKENIZER_FILE, Tokenizer, _token_content

DEFAULTS: dict[str, Any] = {
    "tokenizer_class": "BertTokenizer",
    "do_lower_case": True,
    "tokenize_chinese_chars": True,
    "strip_accents": None,
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
}


class BertTokenizer(Tokenizer):
    """BERT's WordPiece tokenizer: ``zoo.BertTokenizer.from_pretrained(path)`` builds it with BERT's defaults,
    whatever model_type the folder's config.json names (as transformers' BertTokenizer does)."""

    model_type = "bert"


def read_vocab(path: Any) -> dict[str, int]:
    """vocab.txt: one token a line, the line number is the id."""
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def build_wordpiece(repo: Any, settings: dict[str, Any]) -> Any:
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    if not repo.exists("vocab.txt"):
        raise TokenizerError(f"{repo.identifier} has neither tokenizer.json nor vocab.txt; a BERT tokenizer needs one of them")
    vocab = read_vocab(repo.require("vocab.txt"))
    unk, cls, sep = (_token_content(settings[k]) for k in ("unk_token", "cls_token", "sep_token"))
    for name, token in (("unk_token", unk), ("cls_token", cls), ("sep_token", sep)):
        if token not in vocab:
            raise TokenizerError(f"{name} {token!r} is not in {repo.identifier}/vocab.txt; fix tokenizer_config.json")
    backend = Backend(WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
        strip_accents=settings.get("strip_accents"),
        lowercase=settings.get("do_lower_case", True),
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.post_processor = bert_template(cls, vocab[cls], sep, vocab[sep])
    return backend


def bert_template(cls: str, cls_id: int, sep: str, sep_id: int) -> Any:
    """``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with token types 0/1."""
    from tokenizers import processors

    return processors.TemplateProcessing(single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                                         special_tokens=[(cls, cls_id), (sep, sep_id)])


def frame_with_special_tokens(tokenizer: Tokenizer) -> Tokenizer:
    """Make a loaded tokenizer.json use the tokenizer's named tokens: WordPiece's unknown token and the
    ``[CLS] A [SEP]`` template, which transformers' BertTokenizer rebuilds from them on every load. So a folder
    whose tokenizer_config.json names another cls/sep/unk token (as saving after ``tok.sep_token = ...`` writes
    it) frames text alike in both libraries."""
    backend = tokenizer.backend_tokenizer
    unk, cls, sep = tokenizer.unk_token, tokenizer.cls_token, tokenizer.sep_token
    if unk is not None and type(backend.model).__name__ == "WordPiece" and backend.model.unk_token != unk:
        backend.model.unk_token = unk
    if cls is not None and sep is not None:  # both are in the vocabulary now: loading adds missing special tokens
        backend.post_processor = bert_template(cls, tokenizer.cls_token_id, sep, tokenizer.sep_token_id)
    return tokenizer


#: tokenizer_config.json keys and the BertNormalizer fields they set.
NORMALIZER_SETTINGS = {"do_lower_case": "lowercase", "strip_accents": "strip_accents",
                       "tokenize_chinese_chars": "handle_chinese_chars"}


def align_normalizer(backend: Any, given: dict[str, Any]) -> Any:
    """Apply the lowercasing/accent/CJK settings that tokenizer_config.json or the caller state to a tokenizer.json.

    transformers rebuilds BERT's normalizer from these settings even when tokenizer.json has one, so
    ``from_pretrained(path, do_lower_case=False)`` or a config saying so wins over the file. Settings nobody wrote
    down keep the file's normalizer (transformers would impose its class defaults there; the file is the better
    record of how the model was trained).
    """
    from tokenizers import normalizers

    stated = {field: given[key] for key, field in NORMALIZER_SETTINGS.items() if key in given}
    current = backend.normalizer
    if not stated or type(current).__name__ != "BertNormalizer":
        return backend
    fields = {field: getattr(current, field) for field in ("clean_text", *NORMALIZER_SETTINGS.values())}
    if all(fields[field] == value for field, value in stated.items()):
        return backend
    backend.normalizer = normalizers.BertNormalizer(**{**fields, **stated})
    return backend


def from_files(repo: Any, config: Any = None, **kwargs: Any) -> Tokenizer:
    """The tokenizer factory the BERT plugin registers."""
    tokenizer = BertTokenizer.from_repo(repo, build=build_wordpiece, adapt=align_normalizer, defaults=DEFAULTS, **kwargs)
    return frame_with_special_tokens(tokenizer) if repo.exists(TOKENIZER_FILE) else tokenizer
