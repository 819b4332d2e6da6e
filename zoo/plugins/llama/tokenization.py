"""Tokenizers of the Llama family (Llama 2 and 3, Mistral, Qwen2 and Qwen3), read from tokenizer.json as
transformers 5.24 reads them.

Two schemes share these model types: SentencePiece-derived BPE (Llama 2, Mistral: ``▁`` for spaces, byte-fallback
pieces ``<0x41>``, ``<s>`` / ``</s>`` / ``<unk>``) and byte-level BPE (Llama 3, Qwen2/3: GPT-2's byte alphabet under
a split regex, ``<|...|>`` special tokens). The algorithm always runs in ``tokenizers``; what transformers adds on
loading, and this module matches, is which pipeline wraps the file's vocabulary and merges
(models/auto/tokenization_auto.py, models/llama/tokenization_llama.py, models/qwen2/tokenization_qwen2.py,
tokenization_utils_tokenizers.py):

- **LlamaTokenizer** rebuilds the pipeline around the file's vocabulary: no normalizer (a legacy
  ``Prepend``/``Replace`` normalizer is dropped), a Metaspace pre-tokenizer without splitting whose prefix space
  follows ``add_prefix_space`` (default on) and ``legacy`` (default off: ``▁`` only before the first piece, not
  after every special token), byte fallback, and a decoder that undoes exactly that. Default tokens ``<s>`` /
  ``</s>`` / ``<unk>``, no pad token, and padding on the left.
- **Qwen2Tokenizer** rebuilds NFC, Qwen2's split regex with a ByteLevel step (``add_prefix_space``, default off)
  and the ByteLevel decoder; ``<|endoftext|>`` is the default unk, eos and pad token, there is no bos token.
- Otherwise the file is used as saved (transformers' generic ``TokenizersBackend``).

Which of the three a folder gets follows transformers' AutoTokenizer (:func:`pipeline_kind`): model_type ``qwen2``
always Qwen2's; ``mistral`` always the file (transformers without the mistral-common package); otherwise the
``tokenizer_class`` named in tokenizer_config.json (or config.json) decides, except that a LlamaTokenizer whose
tokenizer.json is byte-level (a Llama 3 file declared as Llama 2's) keeps its file; ``qwen3`` with no class named
is Qwen2's.

All three keep the file's post-processor: with a tokenizer.json, transformers ignores ``add_bos_token`` /
``add_eos_token`` written in tokenizer_config.json (the file's template already says what is added). Passing them
to ``from_pretrained`` rewrites the template (``[bos] $A [eos]``, ``... [bos] $B [eos]`` with token type 1 for the
pair), as does a file without a post-processor. ``clean_up_tokenization_spaces`` defaults to False, and is never
applied to these BPE models anyway (see Tokenizer.decode).
"""

from __future__ import annotations

import os
from typing import Any

from zoo.errors import TokenizerError
from zoo.tokenization import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, Tokenizer
from zoo.tokenization.files import read_bpe_vocabulary

#: The split regex of Qwen2's byte-level BPE: contractions, letter runs with one leading non-letter, single digits,
#: punctuation runs, newlines, other whitespace (models/qwen2/tokenization_qwen2.py).
QWEN2_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                     r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPIECE_UNDERLINE = "\u2581"  # "▁", SentencePiece's visible space

_MODEL_INPUTS = ["input_ids", "attention_mask"]
LLAMA_DEFAULTS: dict[str, Any] = {
    "tokenizer_class": "LlamaTokenizer",
    "unk_token": "<unk>",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "padding_side": "left",
    "clean_up_tokenization_spaces": False,
    "model_input_names": _MODEL_INPUTS,
}
QWEN2_DEFAULTS: dict[str, Any] = {
    "tokenizer_class": "Qwen2Tokenizer",
    "unk_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "model_input_names": _MODEL_INPUTS,
}
#: transformers' generic tokenizer names no special tokens and pads on the right.
FILE_DEFAULTS: dict[str, Any] = {"model_input_names": _MODEL_INPUTS}

LLAMA, QWEN2, AS_SAVED = "llama", "qwen2", "as-saved"


class LlamaTokenizer(Tokenizer):
    """Llama 2's (and Mistral's) SentencePiece-derived BPE: ``zoo.LlamaTokenizer.from_pretrained(path)`` always
    builds LlamaTokenizer's pipeline around the folder's tokenizer.json, as transformers' class does;
    ``zoo.AutoTokenizer`` picks the pipeline transformers' AutoTokenizer would."""

    model_type = "llama"

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str], **kwargs: Any) -> Tokenizer:
        return _from_identifier(identifier, LLAMA, kwargs)


class Qwen2Tokenizer(Tokenizer):
    """Qwen2's (and Qwen3's) byte-level BPE: ``zoo.Qwen2Tokenizer.from_pretrained(path)`` always builds
    Qwen2Tokenizer's pipeline around the folder's tokenizer.json (or vocab.json + merges.txt)."""

    model_type = "qwen2"

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str], **kwargs: Any) -> Tokenizer:
        return _from_identifier(identifier, QWEN2, kwargs)


def _from_identifier(identifier: Any, kind: str, kwargs: dict[str, Any]) -> Tokenizer:
    from zoo.auto import check_tokenizer_options
    from zoo.configuration import split_hub_kwargs
    from zoo.hub import repo_files

    repo = repo_files(identifier, **split_hub_kwargs(kwargs))
    check_tokenizer_options(kwargs)
    return load(repo, kind, **kwargs)


# --- which pipeline ----------------------------------------------------------------------------------------------------


def pipeline_kind(tokenizer_class: str | None, model_type: str | None, byte_level: bool) -> str:
    """The pipeline transformers 5.24's AutoTokenizer builds for these files: :data:`LLAMA`, :data:`QWEN2` or
    :data:`AS_SAVED`.

    ``tokenizer_class`` is the class tokenizer_config.json (or config.json) names, ``model_type`` config.json's,
    ``byte_level`` whether tokenizer.json mentions a ByteLevel step (transformers' own test for a Llama 3 file).
    """
    named = tokenizer_class.removesuffix("Fast") if tokenizer_class else None
    if model_type == "qwen2":  # transformers overrides whatever class a Qwen2 repo names
        return QWEN2
    if model_type == "mistral":  # its registered tokenizer is mistral-common's, else the generic one
        return AS_SAVED
    if named == "LlamaTokenizer":
        return AS_SAVED if byte_level else LLAMA
    if named == "Qwen2Tokenizer" or (named is None and model_type == "qwen3"):
        return QWEN2
    return AS_SAVED


def _declared_class(repo: Any, config_json: dict[str, Any]) -> str | None:
    if repo.exists(TOKENIZER_CONFIG_FILE):
        from zoo.configuration import read_json

        named = read_json(repo.require(TOKENIZER_CONFIG_FILE)).get("tokenizer_class")
        if isinstance(named, str) and named:
            return named
    named = config_json.get("tokenizer_class")
    return named if isinstance(named, str) and named else None


def _config_json(repo: Any) -> dict[str, Any]:
    if not repo.exists("config.json"):
        return {}
    from zoo.configuration import read_json

    data = read_json(repo.require("config.json"))
    return data if isinstance(data, dict) else {}


def _is_byte_level(repo: Any) -> bool:
    if not repo.exists(TOKENIZER_FILE):
        return False
    with open(repo.require(TOKENIZER_FILE), encoding="utf-8") as f:
        return '"ByteLevel"' in f.read()


# --- the pipelines ----------------------------------------------------------------------------------------------------


def llama_pipeline(backend: Any, settings: dict[str, Any]) -> Any:
    """LlamaTokenizer's pipeline around ``backend``'s BPE vocabulary and merges (its post-processor and added
    tokens are kept)."""
    from tokenizers import decoders, pre_tokenizers

    if type(backend.model).__name__ != "BPE":
        raise TokenizerError(f"a LlamaTokenizer needs a BPE tokenizer.json, but this one holds a "
                             f"{type(backend.model).__name__} model; set tokenizer_class in tokenizer_config.json to "
                             f"the tokenizer it was saved with (or \"PreTrainedTokenizerFast\" to use it as saved)")
    add_prefix_space = settings.get("add_prefix_space")
    add_prefix_space = True if add_prefix_space is None else bool(add_prefix_space)
    # legacy Llama 2 put "▁" before every piece of text, including after special tokens; legacy=False only at the start
    scheme = ("always" if settings.get("legacy", False) else "first") if add_prefix_space else "never"
    model = backend.model
    model.dropout, model.unk_token = None, None  # transformers rebuilds the BPE without an unk token
    model.fuse_unk, model.byte_fallback = True, True
    model.continuing_subword_prefix, model.end_of_word_suffix, model.ignore_merges = None, None, False
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme=scheme, split=False)
    steps = [decoders.Replace(SPIECE_UNDERLINE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_prefix_space:  # the space the pre-tokenizer put in front is not part of the text
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    backend.decoder = decoders.Sequence(steps)
    return backend


def qwen2_pipeline(backend: Any, settings: dict[str, Any]) -> Any:
    """Qwen2Tokenizer's pipeline around ``backend``'s BPE vocabulary and merges (its post-processor and added
    tokens are kept)."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    if type(backend.model).__name__ != "BPE":
        raise TokenizerError(f"a Qwen2Tokenizer needs a BPE tokenizer.json, but this one holds a "
                             f"{type(backend.model).__name__} model; set tokenizer_class in tokenizer_config.json to "
                             f"the tokenizer it was saved with")
    model = backend.model
    model.dropout, model.unk_token, model.fuse_unk, model.byte_fallback = None, None, False, False
    model.continuing_subword_prefix, model.end_of_word_suffix, model.ignore_merges = "", "", False
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
        # the regex has split already; ByteLevel only maps bytes to its printable alphabet
        pre_tokenizers.ByteLevel(add_prefix_space=bool(settings.get("add_prefix_space") or False), use_regex=False),
    ])
    backend.decoder = decoders.ByteLevel()
    return backend


def build_qwen2_from_vocab(repo: Any, settings: dict[str, Any]) -> Any:
    """A Qwen2 tokenizer from vocab.json + merges.txt, for repos without tokenizer.json."""
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import BPE

    vocab, merges = read_bpe_vocabulary(repo, "a Qwen2 tokenizer")
    return qwen2_pipeline(Backend(BPE(vocab, merges)), settings)


def _no_tokenizer_json(kind: str) -> Any:
    def build(repo: Any, settings: dict[str, Any]) -> Any:
        what = "a LlamaTokenizer" if kind == LLAMA else "this tokenizer"
        extra = (" (a SentencePiece tokenizer.model alone is not read: convert it once with transformers, "
                 "AutoTokenizer.from_pretrained(path).save_pretrained(path), which writes tokenizer.json)")
        raise TokenizerError(f"{repo.identifier} has no {TOKENIZER_FILE}; zoo reads {what} from {TOKENIZER_FILE}"
                             f"{extra if repo.exists('tokenizer.model') else ''}")

    return build


def bos_eos_template(tokenizer: Tokenizer, add_bos: bool, add_eos: bool) -> Any:
    """``[bos] $A [eos]`` and ``[bos] $A [eos] [bos] $B:1 [eos]:1`` as transformers' update_post_processor writes
    them; a flag whose token the tokenizer lacks is dropped, as there."""
    from tokenizers import processors

    bos = tokenizer.bos_token if add_bos else None
    eos = tokenizer.eos_token if add_eos else None
    single = " ".join([*([f"{bos}:0"] if bos else []), "$A:0", *([f"{eos}:0"] if eos else [])])
    pair = " ".join([single, *([f"{bos}:1"] if bos else []), "$B:1", *([f"{eos}:1"] if eos else [])])
    specials = [(token, tokenizer.convert_tokens_to_ids(token)) for token in (bos, eos) if token]
    for token, token_id in specials:
        if token_id is None:
            raise TokenizerError(f"add_bos_token/add_eos_token ask for {token!r}, which is not in the vocabulary; "
                                 f"name a token the vocabulary has")
    return processors.TemplateProcessing(single=single, pair=pair, special_tokens=list(dict.fromkeys(specials)))


# --- loading ----------------------------------------------------------------------------------------------------------


def load(repo: Any, kind: str, **kwargs: Any) -> Tokenizer:
    """The tokenizer of ``repo`` with the pipeline ``kind`` (:data:`LLAMA`, :data:`QWEN2`, :data:`AS_SAVED`)."""
    cls, defaults, rebuild = {
        LLAMA: (LlamaTokenizer, LLAMA_DEFAULTS, llama_pipeline),
        QWEN2: (Qwen2Tokenizer, QWEN2_DEFAULTS, qwen2_pipeline),
        AS_SAVED: (Tokenizer, FILE_DEFAULTS, None),
    }[kind]
    settings_of_caller = dict(kwargs)

    def adapt(backend: Any, given: dict[str, Any]) -> Any:
        return rebuild(backend, {**defaults, **given}) if rebuild is not None else backend

    build = build_qwen2_from_vocab if kind == QWEN2 else _no_tokenizer_json(kind)
    tokenizer = cls.from_repo(repo, build=build, adapt=adapt, defaults=defaults, **kwargs)
    backend = tokenizer.backend_tokenizer
    # From a tokenizer.json, the file's template stands unless the caller passes the flags; without one (or
    # without a post-processor in it), the flags the settings hold build it.
    flags = settings_of_caller if repo.exists(TOKENIZER_FILE) else tokenizer.init_kwargs
    if "add_bos_token" in flags or "add_eos_token" in flags or backend.post_processor is None:
        backend.post_processor = bos_eos_template(tokenizer, bool(flags.get("add_bos_token", False)),
                                                  bool(flags.get("add_eos_token", False)))
    return tokenizer


def from_files(repo: Any, config: Any = None, **kwargs: Any) -> Tokenizer:
    """The tokenizer factory the Llama-family plugin registers for llama, mistral, qwen2 and qwen3.

    The pipeline is the one transformers' AutoTokenizer builds for the same folder (:func:`pipeline_kind`); the
    model_type comes from the folder's config.json (``config`` is None when tokenizer_config.json's class led here
    from another architecture).
    """
    config_json = _config_json(repo)
    model_type = config_json.get("model_type") if isinstance(config_json.get("model_type"), str) else None
    if model_type is None and config is not None:
        model_type = getattr(config, "model_type", None)
    kind = pipeline_kind(_declared_class(repo, config_json), model_type, _is_byte_level(repo))
    return load(repo, kind, **kwargs)
