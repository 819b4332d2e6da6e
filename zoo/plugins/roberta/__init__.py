"""RoBERTa plugin: registers model_type ``roberta`` (hookimpls only; no torch, no model code at import).

distilroberta-base is model_type ``roberta`` too (6 layers), so it loads through this plugin.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_M = "zoo.plugins.roberta.modeling"
_T = "zoo.plugins.roberta.tokenization"
#: What ``from zoo import ...`` finds for RoBERTa (transformers' names; the Fast spelling is the same tokenizer).
EXPORTS = {
    "RobertaConfig": "zoo.plugins.roberta.config:RobertaConfig",
    **{name: f"{_M}:{name}" for name in (
        "RobertaPreTrainedModel", "RobertaModel", "RobertaForMaskedLM", "RobertaForSequenceClassification",
        "RobertaForTokenClassification", "RobertaForQuestionAnswering")},
    "RobertaTokenizer": f"{_T}:RobertaTokenizer",
    "RobertaTokenizerFast": f"{_T}:RobertaTokenizer",
}


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    register(
        Architecture(
            model_type="roberta",
            config="zoo.plugins.roberta.config:RobertaConfig",
            models={
                "base": f"{_M}:RobertaModel",
                "masked-lm": f"{_M}:RobertaForMaskedLM",
                "sequence-classification": f"{_M}:RobertaForSequenceClassification",
                "token-classification": f"{_M}:RobertaForTokenClassification",
                "question-answering": f"{_M}:RobertaForQuestionAnswering",
            },
            tokenizer=f"{_T}:from_files",
            tokenizer_files=("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                             "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json"),
            exports=EXPORTS,
            tf_mapping="zoo.plugins.roberta.tf_mapping:TF_MAPPING",
        )
    )
