"""GPT-2 plugin: registers model_type ``gpt2`` (hookimpls only; no torch, no model code at import)."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_M = "zoo.plugins.gpt2.modeling"


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    register(
        Architecture(
            model_type="gpt2",
            config="zoo.plugins.gpt2.config:GPT2Config",
            models={
                "base": f"{_M}:GPT2Model",
                "causal-lm": f"{_M}:GPT2LMHeadModel",
                "sequence-classification": f"{_M}:GPT2ForSequenceClassification",
                "token-classification": f"{_M}:GPT2ForTokenClassification",
                "question-answering": f"{_M}:GPT2ForQuestionAnswering",
            },
            tokenizer="zoo.plugins.gpt2.tokenization:from_files",
            tokenizer_files=("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                             "special_tokens_map.json", "added_tokens.json"),
        )
    )
