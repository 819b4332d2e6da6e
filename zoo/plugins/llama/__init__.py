"""Llama-family plugin: registers model_types ``llama``, ``mistral``, ``qwen2`` and ``qwen3`` (hookimpls only; no
torch, no model code at import)."""

from __future__ import annotations

from collections.abc import Callable

from zoo.registry import Architecture, hookimpl

_M = "zoo.plugins.llama.modeling"
_C = "zoo.plugins.llama.config"
_T = "zoo.plugins.llama.tokenization"
#: model_type -> transformers' class-name prefix
FAMILIES = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}
#: task -> class-name suffix
HEADS = {
    "base": "Model",
    "causal-lm": "ForCausalLM",
    "sequence-classification": "ForSequenceClassification",
    "token-classification": "ForTokenClassification",
    "question-answering": "ForQuestionAnswering",
}
#: The tokenizer classes (transformers' names; the Fast spelling is the same tokenizer), each offered by the first
#: family whose checkpoints name it: Mistral's name LlamaTokenizer, Qwen3's Qwen2Tokenizer.
TOKENIZERS = {"llama": "LlamaTokenizer", "qwen2": "Qwen2Tokenizer"}


def exports(model_type: str) -> dict[str, str]:
    """What ``from zoo import ...`` finds for one family: its config, its model classes, its tokenizer."""
    prefix = FAMILIES[model_type]
    names = {f"{prefix}Config": f"{_C}:{prefix}Config",
             **{f"{prefix}{suffix}": f"{_M}:{prefix}{suffix}" for suffix in HEADS.values()}}
    if model_type == "llama":
        names["LlamaPreTrainedModel"] = f"{_M}:LlamaPreTrainedModel"
    if model_type in TOKENIZERS:
        tokenizer = TOKENIZERS[model_type]
        names.update({tokenizer: f"{_T}:{tokenizer}", f"{tokenizer}Fast": f"{_T}:{tokenizer}"})
    return names


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json")


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
