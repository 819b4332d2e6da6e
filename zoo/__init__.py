"""zoo: a plugin-based model zoo and Hugging Face Hub client for PyTorch.

``import zoo`` is cheap: no torch, no model code. Every public name below is imported on first access, and so are
the concrete classes plugins export (``zoo.BertForSequenceClassification``, ``zoo.GPT2Tokenizer``): a name zoo does
not define itself is looked up in the registry, whose plugins declare them as data.
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
    "set_seed": "zoo.seeding",
    "GenerationConfig": "zoo.generation",
    "TextStreamer": "zoo.generation",
    "TextIteratorStreamer": "zoo.generation",
}
for _name in (
    "AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForPreTraining", "AutoModelForMaskedLM", "AutoModelWithLMHead",
    "AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoModelForTextEncoding", "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification", "AutoModelForQuestionAnswering", "AutoModelForImageClassification",
    "AutoImageProcessor",
):
    _LAZY[_name] = "zoo.auto"

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        if name.startswith("_"):  # dunder probes (copy, pickle, IDEs) must never load the plugins
            raise AttributeError(f"module 'zoo' has no attribute {name!r}")
        from zoo.registry import get_registry

        value = get_registry().exported(name)  # UnknownExportError is an AttributeError
        globals()[name] = value
        return value
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    from zoo.registry import get_registry

    return sorted(set(globals()) | set(_LAZY) | set(get_registry().exports()))


if TYPE_CHECKING:  # for type checkers and IDEs only
    from zoo import errors, hub
    from zoo.auto import (AutoConfig, AutoImageProcessor, AutoModel, AutoModelForCausalLM, AutoModelForImageClassification,
                          AutoModelForMaskedLM, AutoModelForPreTraining, AutoModelForQuestionAnswering,
                          AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoModelForTextEncoding,
                          AutoModelForTokenClassification, AutoModelWithLMHead, AutoTokenizer)
    from zoo.configuration import Config
    from zoo.errors import ZooError
    from zoo.generation import GenerationConfig, TextIteratorStreamer, TextStreamer
    from zoo.modeling import PreTrainedModel
    from zoo.plugins.bert.modeling import (BertForMaskedLM, BertForPreTraining, BertForQuestionAnswering,
                                           BertForSequenceClassification, BertForTokenClassification, BertModel)
    from zoo.plugins.bert.tokenization import BertTokenizer
    from zoo.plugins.gpt2.modeling import (GPT2ForQuestionAnswering, GPT2ForSequenceClassification,
                                           GPT2ForTokenClassification, GPT2LMHeadModel, GPT2Model)
    from zoo.plugins.gpt2.tokenization import GPT2Tokenizer
    from zoo.plugins.roberta.modeling import (RobertaForMaskedLM, RobertaForQuestionAnswering,
                                              RobertaForSequenceClassification, RobertaForTokenClassification,
                                              RobertaModel)
    from zoo.plugins.roberta.tokenization import RobertaTokenizer
    from zoo.registry import Architecture, get_registry, hookimpl
    from zoo.seeding import set_seed
    from zoo.tokenization import BatchEncoding, Tokenizer
