"""T5-family plugin: registers model_types ``t5``, ``mt5`` and ``umt5`` (hookimpls only; no torch, no model code at
import)."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_M = "zoo.plugins.t5.modeling"
_C = "zoo.plugins.t5.config"
_T = "zoo.plugins.t5.tokenization"
#: model_type -> transformers' class-name prefix
FAMILIES = {"t5": "T5", "mt5": "MT5", "umt5": "UMT5"}
#: task -> class-name suffix
HEADS = {
    "base": "Model",
    "seq2seq-lm": "ForConditionalGeneration",
    "text-encoding": "EncoderModel",
    "sequence-classification": "ForSequenceClassification",
    "question-answering": "ForQuestionAnswering",
}
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")


def exports(model_type: str) -> dict[str, str]:
    """What ``from zoo import ...`` finds for one family: its config and model classes (and, for t5, the tokenizer
    all three share)."""
    prefix = FAMILIES[model_type]
    names = {f"{prefix}Config": f"{_C}:{prefix}Config",
             **{f"{prefix}{suffix}": f"{_M}:{prefix}{suffix}" for suffix in HEADS.values()}}
    if model_type == "t5":
        names.update({"T5PreTrainedModel": f"{_M}:T5PreTrainedModel", "T5Tokenizer": f"{_T}:T5Tokenizer",
                      "T5TokenizerFast": f"{_T}:T5Tokenizer"})
    return names


@hookimpl
def register_architectures(register: Callable[[Architecture], None]) -> None:
    for model_type, prefix in FAMILIES.items():
        register(
            Architecture(
                model_type=model_type,
                config=f"{_C}:{prefix}Config",
                models={task: f"{_M}:{prefix}{suffix}" for task, suffix in HEADS.items()},
                tokenizer=f"{_T}:from_files",
                tokenizer_files=TOKENIZER_FILES,
                exports=exports(model_type),
            )
        )
