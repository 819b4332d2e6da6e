"""T5's tokenizer (also mT5's and umT5's): the SentencePiece Unigram model of a T5 repo's tokenizer.json, read as
transformers 5.24's T5Tokenizer reads it (models/t5/tokenization_t5.py, tokenization_utils_tokenizers.py).

The layout of a T5 vocabulary: ``<pad>`` id 0, ``</s>`` 1, ``<unk>`` 2, the SentencePiece pieces, then ``extra_ids``
sentinel tokens in reverse (``<extra_id_99>`` first, ``<extra_id_0>`` last, at the top of the vocabulary), which
span corruption uses as mask markers. What transformers does on loading, and this module matches:

- it keeps only the file's Unigram vocabulary and scores and rebuilds the rest around them: Unigram with unk id 2
  and no byte fallback; as normalizer only a ``Precompiled`` SentencePiece charsmap found in the file (any other
  normalizer step, such as the converter's ``Replace(" {2,}", " ")``, is dropped); WhitespaceSplit then Metaspace
  (``▁`` before every word) as pre-tokenizer, so runs of whitespace and newlines vanish; the Metaspace decoder;
- ``</s>`` appended after each sequence (``$A </s>``, ``$A </s> $B </s>``, all token type 0), whatever the file's
  post-processor says; ``add_bos_token`` / ``add_eos_token`` change nothing (T5Tokenizer sets its template after
  the base class would have applied them);
- the sentinels are extra special tokens: the list tokenizer_config.json (or the caller) gives under
  ``additional_special_tokens`` / ``extra_special_tokens``, taken as written; only without either key,
  ``extra_ids`` of them (default 100) ``<extra_id_0>`` ... ;
- with added_tokens_decoder in tokenizer_config.json, those are the added tokens, otherwise tokenizer.json's.

A repo with spiece.model but no tokenizer.json cannot be read: turning a SentencePiece model into tokenizer.json
needs the sentencepiece and protobuf packages, which zoo does not depend on.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from zoo.errors import TokenizerError
from zoo.tokenization import TOKENIZER_FILE, Tokenizer, _token_content
from zoo.tokenization.files import read_settings
from zoo.tokenization.special_tokens import extra_tokens_setting

SPIECE_UNDERLINE = "\u2581"  # "▁", SentencePiece's visible space
SENTINEL = re.compile(r"<extra_id_\d+>")
#: T5's unknown token sits at id 2 in every published vocabulary; transformers builds the Unigram model with it.
UNK_ID = 2

DEFAULTS: dict[str, Any] = {
    "tokenizer_class": "T5Tokenizer",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "extra_ids": 100,
    "model_input_names": ["input_ids", "attention_mask"],
}


class T5Tokenizer(Tokenizer):
    """T5's (and mT5's, umT5's) SentencePiece Unigram tokenizer: ``zoo.T5Tokenizer.from_pretrained(path)`` builds
    T5Tokenizer's pipeline around the folder's tokenizer.json, as transformers' class does."""

    model_type = "t5"

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str], **kwargs: Any) -> Tokenizer:
        from zoo.auto import check_tokenizer_options
        from zoo.configuration import split_hub_kwargs
        from zoo.hub import repo_files

        repo = repo_files(identifier, **split_hub_kwargs(kwargs))
        check_tokenizer_options(kwargs)
        return from_files(repo, **kwargs)

    @property
    def extra_ids(self) -> int:
        """How many sentinel tokens the settings ask for (``extra_ids`` of tokenizer_config.json)."""
        return int(self.init_kwargs.get("extra_ids") or 0)

    def get_sentinel_tokens(self) -> list[str]:
        """The sentinel tokens ``<extra_id_N>`` among the extra special tokens, in the order they are listed."""
        return [token for token in self.extra_special_tokens if SENTINEL.fullmatch(token)]

    def get_sentinel_token_ids(self) -> list[int]:
        """Ids of :meth:`get_sentinel_tokens`."""
        return [self.convert_tokens_to_ids(token) for token in self.get_sentinel_tokens()]


#: transformers 4 and 5 both name the class with the Fast suffix in older repos; they are one class here.
T5TokenizerFast = T5Tokenizer


def sentinel_tokens(settings: dict[str, Any]) -> list[Any]:
    """The extra special tokens of a T5 tokenizer, as transformers 5.24's from_pretrained settles them: the list
    the settings hold under ``extra_special_tokens`` or ``additional_special_tokens`` when either key is there (an
    empty list or null meaning none: mT5's configs), else the ``extra_ids`` sentinels ``<extra_id_0>`` ... ."""
    extra_ids = settings.get("extra_ids", DEFAULTS["extra_ids"])
    if isinstance(extra_ids, bool) or not isinstance(extra_ids, int) or extra_ids < 0:
        raise TokenizerError(f"extra_ids must be a non-negative integer, got {extra_ids!r}; fix tokenizer_config.json "
                             f"or the extra_ids argument")
    if "extra_special_tokens" in settings or "additional_special_tokens" in settings:
        # a list is taken as written, without checking it against extra_ids or appending sentinels (transformers
        # converts the key to extra_special_tokens before T5Tokenizer's own handling of extra_ids would run)
        return list(extra_tokens_setting(settings))
    return [f"<extra_id_{i}>" for i in range(extra_ids)]


def t5_pipeline(backend: Any, given: dict[str, Any]) -> Any:
    """T5Tokenizer's pipeline around the Unigram vocabulary of a loaded tokenizer.json (the post-processor is set
    by :func:`from_files` once the special tokens are known)."""
    from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import Unigram

    if type(backend.model).__name__ != "Unigram":
        raise TokenizerError(f"a T5Tokenizer needs a Unigram (SentencePiece) tokenizer.json, but this one holds a "
                             f"{type(backend.model).__name__} model; set tokenizer_class in tokenizer_config.json to "
                             f"the tokenizer it was saved with (or \"PreTrainedTokenizerFast\" to use it as saved)")
    data = json.loads(backend.to_str())  # the Python API exposes neither the scores nor the normalizer's charsmap
    vocab = [(piece, float(score)) for piece, score in data["model"]["vocab"]]
    if len(vocab) <= UNK_ID:
        raise TokenizerError(f"this tokenizer.json has {len(vocab)} pieces; a T5 vocabulary starts with <pad>, </s>, "
                             f"<unk> (ids 0-2), so re-download or re-save it")
    rebuilt = Backend(Unigram(vocab, unk_id=UNK_ID, byte_fallback=False))
    charsmap = _precompiled_charsmap(data.get("normalizer"))
    if charsmap is not None:
        rebuilt.normalizer = normalizers.Precompiled(charsmap)
    rebuilt.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always", split=True),
    ])
    rebuilt.decoder = decoders.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme="always", split=True)
    if "added_tokens_decoder" not in given:  # transformers then takes the added tokens from tokenizer.json
        added = sorted(data.get("added_tokens") or [], key=lambda t: t["id"])
        fields = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")
        if added:
            rebuilt.add_tokens([AddedToken(**{k: t[k] for k in fields if k in t}) for t in added])
    return rebuilt


def _precompiled_charsmap(normalizer: Any) -> bytes | None:
    """The first Precompiled charsmap in a tokenizer.json normalizer (alone or in a Sequence), as transformers
    extracts it."""
    if not normalizer:
        return None
    steps = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    for step in steps:
        if step.get("type") == "Precompiled" and step.get("precompiled_charsmap"):
            return base64.b64decode(step["precompiled_charsmap"])
    return None


def t5_template(tokenizer: Tokenizer) -> Any:
    """``$A </s>`` and ``$A </s> $B </s>``, every token of type 0 (T5Tokenizer.__init__); ``eos_token`` names the
    appended token. Without an eos token nothing is appended."""
    from tokenizers import processors

    eos = tokenizer.eos_token
    if eos is None:
        return processors.TemplateProcessing(single="$A", pair="$A $B:0", special_tokens=[])
    eos_id = tokenizer.convert_tokens_to_ids(eos)
    if eos_id is None:
        raise TokenizerError(f"eos_token {eos!r} is not in the vocabulary, so T5's template cannot append it; name a "
                             f"token the vocabulary has")
    return processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, eos_id)])


def _no_tokenizer_json(repo: Any, settings: dict[str, Any]) -> Any:
    found = " (it has spiece.model, the SentencePiece model)" if repo.exists("spiece.model") else ""
    raise TokenizerError(f"{repo.identifier} has no {TOKENIZER_FILE}{found}; zoo reads a T5 tokenizer from "
                         f"{TOKENIZER_FILE} only, since converting spiece.model needs the sentencepiece and protobuf "
                         f"packages. Convert it once with transformers (pip install sentencepiece protobuf, then "
                         f"T5TokenizerFast.from_pretrained(path).save_pretrained(path)), or download the repo's "
                         f"{TOKENIZER_FILE}")


def from_files(repo: Any, config: Any = None, **kwargs: Any) -> T5Tokenizer:
    """The tokenizer factory the T5 plugin registers for t5, mt5 and umt5 (``config`` is not needed: the files say
    everything)."""
    given, _ = read_settings(repo, kwargs)
    # the sentinels are computed here and passed under both keys, so whichever one the files used is replaced
    extra = sentinel_tokens({**DEFAULTS, **given})
    tokenizer = T5Tokenizer.from_repo(repo, build=_no_tokenizer_json, adapt=t5_pipeline, defaults=DEFAULTS,
                                      **{**kwargs, "additional_special_tokens": extra, "extra_special_tokens": extra})
    assert isinstance(tokenizer, T5Tokenizer)
    tokenizer.backend_tokenizer.post_processor = t5_template(tokenizer)
    return tokenizer
