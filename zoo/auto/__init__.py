"""The Auto layer: from an identifier to the right plugin's classes.

Resolution is ``config.json`` -> ``model_type`` -> registry -> the class registered for the task; there are no
mapping tables here, so a third-party plugin's architecture works with every Auto class the moment it is installed.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zoo.configuration import CONFIG_NAME, LOADING_OPTIONS, Config, config_from_file, read_json, split_hub_kwargs
from zoo.errors import ConfigError
from zoo.hub import RepoFiles, repo_files
from zoo.registry import Architecture, get_registry

__all__ = [
    "AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForPreTraining", "AutoModelForMaskedLM", "AutoModelWithLMHead",
    "AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoModelForTextEncoding", "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification", "AutoModelForQuestionAnswering", "AutoModelForImageClassification", "AutoImageProcessor",
]


def architecture_of(repo: RepoFiles) -> tuple[Architecture, dict[str, Any]]:
    """The registered architecture of a repo, read from its config.json, and that JSON."""
    data = read_json(repo.require(CONFIG_NAME))
    model_type = data.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        registered = ", ".join(sorted(get_registry().architectures()))
        found = "has no model_type" if model_type in (None, "") else \
            f"has model_type {str(model_type)[:40]}, a JSON {_json_kind(model_type)} where a string belongs"
        fix = "add one" if model_type in (None, "") else "make it the name of an architecture"
        raise ConfigError(f"{repo.identifier}/{CONFIG_NAME} {found}; {fix}, e.g. \"model_type\": \"bert\" "
                          f"(registered: {registered})")
    return get_registry().architecture(model_type), data


def _json_kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}.get(type(value), "value")


def _config(repo: RepoFiles, **overrides: Any) -> Config:
    if not repo.exists(CONFIG_NAME):  # an original release: bert_config.json, hparams.json (zoo/convert/release.py)
        from zoo.convert.release import release_config

        config = release_config(repo, overrides)
        if config is not None:
            return config
    arch, data = architecture_of(repo)
    return config_from_file(arch.config_class(), repo.require(CONFIG_NAME), data, overrides)


class AutoConfig:
    """``AutoConfig.from_pretrained(identifier)`` -> the plugin's Config subclass."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not instantiated; use AutoConfig.from_pretrained(...) or AutoConfig.for_model(...)")

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str] | RepoFiles, **kwargs: Any) -> Config:
        """Read config.json; keyword arguments other than hub options override its fields."""
        return _config(repo_files(identifier, **split_hub_kwargs(kwargs)), **kwargs)

    @classmethod
    def for_model(cls, model_type: str, **kwargs: Any) -> Config:
        """A default config of a registered model_type, with ``kwargs`` as fields."""
        return get_registry().architecture(model_type).config_class()(**kwargs)


class AutoTokenizer:
    """``AutoTokenizer.from_pretrained(identifier)`` -> the architecture's Tokenizer (zoo.tokenization.Tokenizer).

    The architecture is found as transformers finds it: tokenizer_config.json's ``tokenizer_class`` when a plugin
    exports that name (``"RobertaTokenizer"``, with or without ``Fast``), else config.json's ``model_type``; a
    folder with neither but a tokenizer.json loads as a plain Tokenizer.
    """

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str] | RepoFiles, **kwargs: Any) -> Any:
        from zoo.tokenization import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, Tokenizer

        check_tokenizer_options(kwargs)
        repo = repo_files(identifier, **split_hub_kwargs(kwargs))
        named = tokenizer_class_of(repo)
        arch = tokenizer_architecture(named) if named else None
        if arch is None and repo.exists(CONFIG_NAME):
            arch, _ = architecture_of(repo)
        if arch is None and not repo.exists(TOKENIZER_FILE):  # an original release folder (vocab.txt, encoder.json)
            from zoo.convert.release import release_tokenizer_architecture

            arch = release_tokenizer_architecture(repo)
        if arch is not None and arch.tokenizer is not None:
            return build_tokenizer(arch, repo, **kwargs)
        if named and not repo.exists(TOKENIZER_FILE) and named not in _GENERIC_TOKENIZERS:
            exported = sorted(n for n, a in get_registry().exports().items() if a.tokenizer is not None
                              and n.endswith("Tokenizer"))
            raise ConfigError(f"{repo.identifier}/{TOKENIZER_CONFIG_FILE} names tokenizer_class {named!r}, which no "
                              f"installed plugin provides (tokenizer classes: {', '.join(exported) or 'none'}), and "
                              f"there is no {TOKENIZER_FILE} to load without it; install the plugin for that model, or "
                              f"add a config.json whose model_type names a registered architecture")
        return Tokenizer.from_repo(repo, **kwargs)  # a bare tokenizer.json needs no architecture


def check_tokenizer_options(kwargs: dict[str, Any]) -> None:
    """Drop the loading options transformers' tokenizers take that are no settings (they would otherwise be saved
    into tokenizer_config.json), and refuse remote code, as the model and config loaders do."""
    kwargs.pop("use_fast", None)  # there is one tokenizer implementation, the Rust one transformers calls fast
    if kwargs.pop("trust_remote_code", False):
        raise ConfigError("trust_remote_code=True was passed, but zoo never runs code from a model repository; "
                          "install a zoo plugin that provides this tokenizer (`zoo plugins` lists the registered ones) "
                          "and load without trust_remote_code (False is accepted and ignored)")


#: tokenizer_class values that mean "just tokenizer.json" (transformers 4's and 5's generic fast tokenizer).
_GENERIC_TOKENIZERS = frozenset({"PreTrainedTokenizerFast", "TokenizersBackend", "PreTrainedTokenizer"})


def tokenizer_class_of(repo: RepoFiles) -> str | None:
    """The ``tokenizer_class`` tokenizer_config.json names, if it names one."""
    from zoo.tokenization import TOKENIZER_CONFIG_FILE

    if not repo.exists(TOKENIZER_CONFIG_FILE):
        return None
    named = read_json(repo.require(TOKENIZER_CONFIG_FILE)).get("tokenizer_class")
    return named if isinstance(named, str) and named else None


def tokenizer_architecture(tokenizer_class: str) -> Architecture | None:
    """The architecture whose plugin exports ``tokenizer_class`` (``BertTokenizerFast`` finds ``BertTokenizer``'s)."""
    registry = get_registry()
    for name in dict.fromkeys((tokenizer_class, tokenizer_class.removesuffix("Fast"))):
        arch = registry.exporter(name)
        if arch is not None and arch.tokenizer is not None:
            return arch
    return None


def build_tokenizer(arch: Architecture, repo: RepoFiles, **kwargs: Any) -> Any:
    """The tokenizer ``arch``'s plugin builds from ``repo`` (its config passed along when config.json is this
    architecture's)."""
    from zoo.registry import resolve_import

    check_tokenizer_options(kwargs)
    if arch.tokenizer is None:
        raise ConfigError(f"model_type '{arch.model_type}' registers no tokenizer; it takes no text input, or its "
                          f"plugin is incomplete")
    config = None
    if repo.exists(CONFIG_NAME):
        data = read_json(repo.require(CONFIG_NAME))
        if data.get("model_type") == arch.model_type:
            config = config_from_file(arch.config_class(), repo.require(CONFIG_NAME), data, {})
    elif arch.tf_mapping is not None:  # a release folder's names and settings (encoder.json, do_lower_case)
        from zoo.convert.release import prepare_release_tokenizer

        repo = prepare_release_tokenizer(arch, repo, kwargs)
    return resolve_import(arch.tokenizer)(repo, config, **kwargs)


class AutoImageProcessor:
    """``AutoImageProcessor.from_pretrained(identifier)`` -> the architecture's image processor (zoo.image_processing)."""

    def __init__(self) -> None:
        raise TypeError("AutoImageProcessor is not instantiated; use AutoImageProcessor.from_pretrained(...) or .from_config(...)")

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str] | RepoFiles, **kwargs: Any) -> Any:
        """Read preprocessor_config.json through the factory the architecture registers (the generic
        ImageProcessor for a folder without config.json); keyword arguments override its fields."""
        from zoo.image_processing import from_files
        from zoo.registry import resolve_import

        repo = repo_files(identifier, **split_hub_kwargs(kwargs))
        if repo.exists(CONFIG_NAME):
            arch, data = architecture_of(repo)
            if arch.image_processor is not None:
                config = config_from_file(arch.config_class(), repo.require(CONFIG_NAME), data, {})
                return resolve_import(arch.image_processor)(repo, config, **kwargs)
        return from_files(repo, **kwargs)

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Any:
        """The architecture's default image processor for ``config`` (no files read)."""
        from zoo.image_processing import ImageProcessor
        from zoo.registry import resolve_import

        arch = get_registry().architecture(config.model_type)
        if arch.image_processor is None:
            return ImageProcessor(**kwargs)
        return resolve_import(arch.image_processor)(None, config, **kwargs)


class _AutoModel:
    task: ClassVar[str] = "base"

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is not instantiated; use {type(self).__name__}.from_pretrained(...) "
                        f"or .from_config(...)")

    @classmethod
    def model_class(cls, config: Config) -> type:
        return get_registry().architecture(config.model_type).model_class(cls.task)

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str] | RepoFiles, **kwargs: Any) -> Any:
        """Load the model for this task. ``dtype``, ``device``, ``ignore_mismatched_sizes``, ``output_loading_info``
        and ``quantization`` go to the model; hub options to the hub client; the rest override config fields."""
        from zoo.devices import resolve_device

        if "device" in kwargs:  # before any file is read or downloaded
            kwargs["device"] = resolve_device(kwargs["device"])
        quantization = kwargs.pop("quantization", None)
        if quantization is not None:  # int8 projections (zoo/quantization.py), checked before any file is read
            from zoo.quantization import check_quantization

            quantization = check_quantization(quantization)
        repo = repo_files(identifier, **split_hub_kwargs(kwargs))
        options = {k: kwargs.pop(k) for k in sorted(LOADING_OPTIONS - {"config"}) if k in kwargs}
        config = kwargs.pop("config", None)
        if options.pop("from_tf", False):  # TensorFlow weights, read without TensorFlow (zoo/convert/loader.py)
            from zoo.convert.loader import load_tf_model

            loaded = load_tf_model(None, repo, task=cls.task, config=config, **options, **kwargs)
            if quantization is not None:
                from zoo.quantization import quantize_loaded

                loaded = quantize_loaded(loaded, quantization)
            return loaded
        if config is None:
            config = _config(repo, **kwargs)
        elif kwargs:
            config = type(config).from_dict(config.to_dict(), **kwargs)
        if quantization is not None:
            options["quantization"] = quantization
        return cls.model_class(config).from_pretrained(repo, config=config, **options)

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Any:
        """A freshly initialised model of this task for ``config``."""
        return cls.model_class(config).from_config(config, **kwargs)


class AutoModel(_AutoModel):
    task = "base"


class AutoModelForPreTraining(_AutoModel):
    task = "pretraining"


class AutoModelForMaskedLM(_AutoModel):
    task = "masked-lm"


AutoModelWithLMHead = AutoModelForMaskedLM


class AutoModelForCausalLM(_AutoModel):
    task = "causal-lm"


class AutoModelForSeq2SeqLM(_AutoModel):
    """Encoder-decoder language models (T5's ForConditionalGeneration)."""

    task = "seq2seq-lm"


class AutoModelForTextEncoding(_AutoModel):
    """The encoder of an encoder-decoder alone (T5EncoderModel), for embeddings."""

    task = "text-encoding"


class AutoModelForSequenceClassification(_AutoModel):
    task = "sequence-classification"


class AutoModelForTokenClassification(_AutoModel):
    task = "token-classification"


class AutoModelForQuestionAnswering(_AutoModel):
    task = "question-answering"


class AutoModelForImageClassification(_AutoModel):
    task = "image-classification"
