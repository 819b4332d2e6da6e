"""zoo-distilbert: registers model_type ``distilbert`` with zoo (hookimpls only; model code loads on first use)."""

from __future__ import annotations

from collections.abc import Callable

from zoo import hookimpl
from zoo.registry import Architecture

__version__ = "0.1.0"
_M = "zoo_distilbert.modeling"
#: What ``from zoo import ...`` finds once this package is installed (transformers' names).
EXPORTS = {
    "DistilBertConfig": "zoo_distilbert.config:DistilBertConfig",
    **{name: f"{_M}:{name}" for name in (
        "DistilBertPreTrainedModel", "DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
        "DistilBertForTokenClassification", "DistilBertForQuestionAnswering")},
    "DistilBertTokenizer": "zoo_distilbert.tokenization:DistilBertTokenizer",
    "DistilBertTokenizerFast": "zoo_distilbert.tokenization:DistilBertTokenizer",
}


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    register(
        Architecture(
            model_type="distilbert",
            config="zoo_distilbert.config:DistilBertConfig",
            models={
                "base": f"{_M}:DistilBertModel",
                "masked-lm": f"{_M}:DistilBertForMaskedLM",
                "sequence-classification": f"{_M}:DistilBertForSequenceClassification",
                "token-classification": f"{_M}:DistilBertForTokenClassification",
                "question-answering": f"{_M}:DistilBertForQuestionAnswering",
            },
            tokenizer="zoo_distilbert.tokenization:from_files",
            tokenizer_files=("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"),
            exports=EXPORTS,
            tf_mapping="zoo_distilbert.tf_mapping:TF_MAPPING",
        )
    )
