"""GPT-2's byte-level BPE tokenizer, built in ``tokenizers`` from vocab.json + merges.txt when a repo has no
tokenizer.json.

The pipeline is the one transformers builds for GPT2Tokenizer (tokenization_gpt2.py): the ByteLevel
pre-tokenizer (GPT-2's regex split, every byte mapped to a printable character, optional prefix space), BPE with
no continuation prefix or word suffix, the ByteLevel decoder, and a template that adds ``<|endoftext|>`` only when
``add_bos_token`` / ``add_eos_token`` ask for it. Every byte sequence is encodable, so there is no unknown token in
practice. GPT-2 has no padding token: pass ``pad_token=`` (usually the EOS token) and, to batch prompts for
generation, ``padding_side="left"``.
"""

from __future__ import annotations

import json
from typing import Any

from zoo.errors import TokenizerError
from zoo.tokenization import Tokenizer, _token_content
from zoo.tokenization.files import read_bpe_vocabulary

DEFAULTS: dict[str, Any] = {
    "tokenizer_class": "GPT2Tokenizer",
    "unk_token": "<|endoftext|>",
    "bos_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
    "model_input_names": ["input_ids", "attention_mask"],
}


class GPT2Tokenizer(Tokenizer):
    """GPT-2's byte-level BPE tokenizer: ``zoo.GPT2Tokenizer.from_pretrained(path)`` builds it with GPT-2's defaults,
    whatever model_type the folder's config.json names."""

    model_type = "gpt2"


def _template(backend: Any, settings: dict[str, Any]) -> Any:
    """``[bos] $A [eos]`` (and ``... $B:1 ...`` for pairs) as transformers' update_post_processor writes it."""
    from tokenizers import processors

    bos = _token_content(settings.get("bos_token")) if settings.get("add_bos_token") else None
    eos = _token_content(settings.get("eos_token")) if settings.get("add_eos_token") else None
    specials = []
    for token in (bos, eos):
        if token is not None:
            token_id = backend.token_to_id(token)
            if token_id is None:
                raise TokenizerError(f"add_bos_token/add_eos_token ask for {token!r}, which is not in the vocabulary; "
                                     f"fix tokenizer_config.json")
            specials.append((token, token_id))
    single = f"{bos + ':0 ' if bos else ''}$A:0{' ' + eos + ':0' if eos else ''}"
    pair = f"{single}{' ' + bos + ':1' if bos else ''} $B:1{' ' + eos + ':1' if eos else ''}"
    return processors.TemplateProcessing(single=single, pair=pair, special_tokens=list(dict.fromkeys(specials)))


def build_byte_level_bpe(repo: Any, settings: dict[str, Any]) -> Any:
    from tokenizers import AddedToken, decoders, pre_tokenizers
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import BPE

    vocab, merges = read_bpe_vocabulary(repo, "a GPT-2 tokenizer")
    backend = Backend(BPE(vocab, merges, dropout=None, continuing_subword_prefix="", end_of_word_suffix="",
                          fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=bool(settings.get("add_prefix_space")))
    backend.decoder = decoders.ByteLevel()
    if repo.exists("added_tokens.json"):  # tokens added after training, as older repos list them
        with open(repo.require("added_tokens.json"), encoding="utf-8") as f:
            added = json.load(f)
        backend.add_tokens([AddedToken(t, normalized=False) for t, _ in sorted(added.items(), key=lambda kv: kv[1])])
    backend.post_processor = _template(backend, settings)
    return backend


def from_files(repo: Any, config: Any = None, **kwargs: Any) -> Tokenizer:
    """The tokenizer factory the GPT-2 plugin registers.

    With a tokenizer.json its pipeline is used as saved, except where tokenizer_config.json or the caller set
    ``add_prefix_space`` or ``add_bos_token`` / ``add_eos_token``, which (as in transformers) rebuild the
    pre-tokenizer or the template.
    """
    tokenizer = GPT2Tokenizer.from_repo(repo, build=build_byte_level_bpe, defaults=DEFAULTS, **kwargs)
    backend, settings = tokenizer.backend_tokenizer, tokenizer.init_kwargs
    if "add_prefix_space" in settings and type(backend.pre_tokenizer).__name__ == "ByteLevel":
        from tokenizers import pre_tokenizers

        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=bool(settings["add_prefix_space"]))
    if "add_bos_token" in settings or "add_eos_token" in settings:
        backend.post_processor = _template(backend, settings)
    return tokenizer
