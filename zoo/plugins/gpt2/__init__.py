"""GPT-2 plugin: registers model_type ``gpt2`` (hookimpls only; no torch, no model code at import)."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_M = "zoo.plugins.gpt2.modeling"
_T = "zoo.plugins.gpt2.tokenization"
#: What ``from zoo import ...`` finds for GPT-2 (transformers' names; the Fast spelling is the same tokenizer).
EXPORTS = {
    "GPT2Config": "zoo.plugins.gpt2.config:GPT2Config",
    **{name: f"{_M}:{name}" for name in (
        "GPT2PreTrainedModel", "GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification",
        "GPT2ForTokenClassification", "GPT2ForQuestionAnswering")},
    "GPT2Tokenizer": f"{_T}:GPT2Tokenizer",
    "GPT2TokenizerFast": f"{_T}:GPT2Tokenizer",
}


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
            tokenizer=f"{_T}:from_files",
            tokenizer_files=("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                             "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json"),
            exports=EXPORTS,
            tf_mapping="zoo.plugins.gpt2.tf_mapping:TF_MAPPING",
        )
    )
