"""BERT plugin: registers model_type ``bert`` (hookimpls only; no torch, no model code at import)."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_M = "zoo.plugins.bert.modeling"
_T = "zoo.plugins.bert.tokenization"
#: What ``from zoo import ...`` finds for BERT (transformers' names; the Fast spelling is the same tokenizer).
EXPORTS = {
    "BertConfig": "zoo.plugins.bert.config:BertConfig",
    **{name: f"{_M}:{name}" for name in (
        "BertPreTrainedModel", "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification",
        "BertForTokenClassification", "BertForQuestionAnswering")},
    "BertTokenizer": f"{_T}:BertTokenizer",
    "BertTokenizerFast": f"{_T}:BertTokenizer",
}


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
            tokenizer=f"{_T}:from_files",
            tokenizer_files=("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                             "chat_template.jinja", "chat_template.json"),
            exports=EXPORTS,
            tf_mapping="zoo.plugins.bert.tf_mapping:TF_MAPPING",
        )
    )
