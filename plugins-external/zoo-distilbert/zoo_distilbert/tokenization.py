"""DistilBERT's tokenizer: BERT's WordPiece without token type ids.

DistilBERT declares BERT as its parent for tokenization (as transformers' DistilBertTokenizer subclasses
BertTokenizer), so the WordPiece pipeline for repos without tokenizer.json is BERT's, imported from zoo's BERT plugin.
"""

from __future__ import annotations

from typing import Any

from zoo.plugins.bert.tokenization import DEFAULTS as BERT_DEFAULTS
from zoo.plugins.bert.tokenization import BertTokenizer, align_normalizer, build_wordpiece, frame_with_special_tokens
from zoo.tokenization import TOKENIZER_FILE

DEFAULTS: dict[str, Any] = {**BERT_DEFAULTS, "tokenizer_class": "DistilBertTokenizer",
                            "model_input_names": ["input_ids", "attention_mask"]}


class DistilBertTokenizer(BertTokenizer):
    """DistilBERT's tokenizer, a BertTokenizer (as in transformers) with DistilBERT's defaults."""

    model_type = "distilbert"


def from_files(repo: Any, config: Any = None, **kwargs: Any) -> DistilBertTokenizer:
    """The tokenizer factory the DistilBERT plugin registers: BERT's, as transformers' DistilBertTokenizer is."""
    tokenizer = DistilBertTokenizer.from_repo(repo, build=build_wordpiece, adapt=align_normalizer, defaults=DEFAULTS,
                                              **kwargs)
    return frame_with_special_tokens(tokenizer) if repo.exists(TOKENIZER_FILE) else tokenizer
