"""zoo: a plugin-based model zoo and Hugging Face Hub client for PyTorch.

``import zoo`` is cheap: no torch, no model code. Every public name below is imported on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "hookimpl": "zoo.registry",
    "Architecture": "zoo.registry",
    "get_registry": "zoo.registry",
    "pipeline": "zoo.pipelines",
    "Config": "zoo.configuration",
    "PreTrainedModel": "zoo.modeling",
    "Tokenizer": "zoo.tokenization",
    "BatchEncoding": "zoo.tokenization",
    "errors": "zoo.errors",
    "hub": "zoo.hub",
    "ZooError": "zoo.errors",
}
for _name in (
    "AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForPreTraining", "AutoModelForMaskedLM", "AutoModelWithLMHead",
    "AutoModelForCausalLM", "AutoModelForSequenceClassification", "AutoModelForTokenClassification",
    "AutoModelForQuestionAnswering", "AutoModelForImageClassification", "AutoImageProcessor",
):
    _LAZY[_name] = "zoo.auto"

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and IDEs only
    from zoo import errors, hub
    from zoo.auto import (AutoConfig, AutoImageProcessor, AutoModel, AutoModelForCausalLM, AutoModelForImageClassification,
                          AutoModelForMaskedLM, AutoModelForPreTraining, AutoModelForQuestionAnswering,
                          AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoModelWithLMHead,
                          AutoTokenizer)
    from zoo.configuration import Config
    from zoo.errors import ZooError
    from zoo.modeling import PreTrainedModel
    from zoo.registry import Architecture, get_registry, hookimpl
    from zoo.tokenization import BatchEncoding, Tokenizer
