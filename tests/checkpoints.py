"""Small random checkpoints written by transformers at test time (the parity oracle).

``make_bert(folder, task=..., **config)`` saves a transformers model with fixed-seed random weights and the
matching tokenizer files, and returns the transformers model in eval mode, so a test can compare zoo's outputs on
the very same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# A small WordPiece vocabulary covering the tricky-text tests: specials, ASCII, accents, CJK, emoji pieces.
BERT_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-()")
    + ["the", "a", "i", "love", "hate", "python", "bugs", "hello", "world", "is", "of", "and", "to", "in"]
    + ["##s", "##ing", "##ed", "##ly", "##er", "##e", "##a", "##o", "##n", "##t", "##i", "##r", "##l"]
    + ["café", "naïve", "über", "é", "ü", "ï", "中", "国", "日", "本", "語", "😀", "##😀"]
)

TINY_BERT = dict(vocab_size=len(BERT_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=37, max_position_embeddings=64, type_vocab_size=2)

HF_BERT_CLASSES = {
    "base": "BertModel",
    "pretraining": "BertForPreTraining",
    "masked-lm": "BertForMaskedLM",
    "sequence-classification": "BertForSequenceClassification",
    "token-classification": "BertForTokenClassification",
    "question-answering": "BertForQuestionAnswering",
}


ATOL = RTOL = 1e-5


def assert_outputs_equal(zoo_out, hf_out, keys=None) -> None:
    """zoo's output equals transformers' on ``keys`` (default: every key transformers returns but cross_attentions),
    tuples (hidden states, attentions) element by element, within 1e-5."""
    keys = keys or [k for k in hf_out.keys() if k != "cross_attentions"]
    for key in keys:
        expected, got = hf_out[key], getattr(zoo_out, key)
        if isinstance(expected, tuple):
            assert isinstance(got, tuple) and len(got) == len(expected), key
            for i, (a, b) in enumerate(zip(got, expected)):
                torch.testing.assert_close(a, b, atol=ATOL, rtol=RTOL, msg=lambda m: f"{key}[{i}]: {m}")
        else:
            torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL, msg=lambda m: f"{key}: {m}")


def write_bert_vocab(folder: Path, do_lower_case: bool = True) -> None:
    """vocab.txt + tokenizer_config.json, as a pre-tokenizer.json BERT repo publishes them."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": do_lower_case, "model_max_length": 64, "tokenizer_class": "BertTokenizer"}))


def make_bert(folder: Path, task: str = "base", seed: int = 0, tokenizer: bool = True, **overrides: Any):
    """Save a random transformers BERT for ``task`` under ``folder``; return the transformers model (eval)."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.BertConfig(**{**TINY_BERT, **overrides})
    model = getattr(transformers, HF_BERT_CLASSES[task])(config).eval()
    model.save_pretrained(folder)
    if tokenizer:
        write_bert_vocab(folder, do_lower_case=overrides.get("do_lower_case", True))
    return model
