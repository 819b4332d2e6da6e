"""BERT plugin: registers model_type ``bert`` (hookimpls only; no torch, no model code at import)."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_M = "zoo.plugins.bert.modeling"


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    register(
        Architecture(
            model_type="bert",
            config="zoo.plugins.bert.config:BertConfig",
            models={
                "base": f"{_M}:BertModel",
                "pretraining": f"{_M}:BertForPreTraining",
                "masked-lm": f"{_M}:BertForMaskedLM",
                "sequence-classification": f"{_M}:BertForSequenceClassification",
                "token-classification": f"{_M}:BertForTokenClassification",
                "question-answering": f"{_M}:BertForQuestionAnswering",
            },
            tokenizer="zoo.plugins.bert.tokenization:from_files",
            tokenizer_files=("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"),
        )
    )
