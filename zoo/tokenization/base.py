"""One Tokenizer class over the Rust ``tokenizers`` library, for every architecture.

The algorithm (WordPiece, byte-level BPE, ...) always runs in ``tokenizers``; this module reads the files the Hub
publishes (``tokenizer.json``, or the vocab files a plugin builds a pipeline from, plus the settings beside them),
applies per-call padding and truncation, and returns what transformers' fast tokenizers return (``BatchEncoding``
with input_ids, token_type_ids, attention_mask, offsets, overflowing windows, labels for ``text_target``), so the
two are interchangeable (tokenization_utils_tokenizers.py, tokenization_utils_base.py). Special tokens and
``add_tokens`` live in special_tokens.py, input rules in inputs.py, padding of finished encodings in encoding.py,
the folder layout in files.py.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import TokenizerError
from zoo.tokenization.encoding import BatchEncoding, _as_list, _to_tensor, pad_encodings
from zoo.tokenization.files import (SPECIAL_TOKENS_MAP_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, VERY_LARGE_INTEGER,
                                    _write_files_atomic, json_text, read_settings, saved_settings)
from zoo.tokenization.inputs import Plan, batch_inputs, check_plan, plan
from zoo.tokenization.special_tokens import (SPECIAL_TOKEN_NAMES, SpecialTokensMixin, _added_token, _ordered,
                                             _token_content, extra_tokens_setting, model_specific_tokens)

logger = logging.getLogger(__name__)

_SIDES = ("left", "right")


class Tokenizer(SpecialTokensMixin):
    """A ``tokenizers.Tokenizer`` plus the settings transformers keeps beside it in tokenizer_config.json."""

    #: The architecture a plugin's subclass (``BertTokenizer``) builds in ``from_pretrained``; None: resolve it.
    model_type: str | None = None

    def __init__(
        self,
        backend: Any,
        *,
        init_kwargs: dict[str, Any] | None = None,
        model_input_names: Sequence[str] = ("input_ids", "token_type_ids", "attention_mask"),
        tokenizer_class: str | None = None,
    ) -> None:
        import tokenizers

        if not isinstance(backend, tokenizers.Tokenizer):
            raise TypeError(f"backend must be a tokenizers.Tokenizer, got {type(backend).__name__}")
        self._backend = backend
        self._backend.no_truncation()
        self._backend.no_padding()
        self._lock = threading.RLock()  # padding/truncation are set on the shared backend per call
        self._warned_long = False
        self.init_kwargs: dict[str, Any] = dict(init_kwargs or {})
        kw = self.init_kwargs
        self.name_or_path = str(kw.pop("name_or_path", ""))
        self.tokenizer_class = kw.get("tokenizer_class") or tokenizer_class
        self.model_input_names = tuple(kw.get("model_input_names") or model_input_names)
        self.model_max_length = int(kw.get("model_max_length") or VERY_LARGE_INTEGER)
        self.padding_side = kw.get("padding_side", "right")
        self.truncation_side = kw.get("truncation_side", "right")
        self.clean_up_tokenization_spaces = bool(kw.get("clean_up_tokenization_spaces", False))
        template = kw.pop("chat_template", None)
        if isinstance(template, (list, tuple)):  # tokenizer_config.json's form of several named templates
            template = {t["name"]: t["template"] for t in template}
        #: The chat template: a string, a dict of named templates (``"default"``, ``"tool_use"``, ...) or None.
        self.chat_template: str | dict[str, str] | None = template
        tokens = {n: c for n in SPECIAL_TOKEN_NAMES if (c := _token_content(kw.get(n))) is not None}
        tokens.update(model_specific_tokens(kw))
        self.special_tokens: dict[str, str] = _ordered(tokens)
        extra = extra_tokens_setting(kw)
        self._extra_special_tokens: list[str] = [_token_content(t) for t in extra]
        self._add_tokens_to_backend(extra)

    def _add_tokens_to_backend(self, extra: list[Any]) -> None:
        """Register the added tokens the config lists and every special token with the backend, in transformers'
        order (added_tokens_decoder by id, then named special tokens, then extra ones), so text like "[MASK]" is
        never split and lstrip/rstrip/normalized flags written in the config apply."""
        decoder = self.init_kwargs.get("added_tokens_decoder") or {}
        try:
            listed = [_added_token(decoder[k], special=None) for k in sorted(decoder, key=int)]
        except (TypeError, ValueError, KeyError) as exc:
            raise TokenizerError(f"added_tokens_decoder in tokenizer_config.json is malformed ({exc}); it maps ids to "
                                 f"{{\"content\": ..., \"special\": ...}} objects") from None
        named = [_added_token(self.init_kwargs.get(n, c), special=True) for n, c in self.special_tokens.items()]
        known = {t.content for t in self._backend.get_added_tokens_decoder().values()}
        missing = []
        for token in [*listed, *named, *(_added_token(t, special=True) for t in extra)]:
            if token.content not in known:
                known.add(token.content)
                missing.append(token)
        if missing:  # one call, so new tokens get consecutive ids exactly as transformers assigns them
            self._backend.add_tokens(missing)

    # --- settings ----------------------------------------------------------------------------------------------------

    @property
    def padding_side(self) -> str:
        """Where padding goes: "right" (the default) or "left" (for batched generation)."""
        return self._padding_side

    @padding_side.setter
    def padding_side(self, value: str) -> None:
        self._padding_side = _side("padding_side", value)

    @property
    def truncation_side(self) -> str:
        """Which end truncation cuts: "right" (the default) or "left"."""
        return self._truncation_side

    @truncation_side.setter
    def truncation_side(self, value: str) -> None:
        self._truncation_side = _side("truncation_side", value)

    @property
    def pad_token_type_id(self) -> int:
        return int(self.init_kwargs.get("pad_token_type_id", 0))

    # --- loading -----------------------------------------------------------------------------------------------------

    @classmethod
    def from_repo(
        cls,
        repo: Any,
        *,
        build: Callable[[Any, dict[str, Any]], Any] | None = None,
        adapt: Callable[[Any, dict[str, Any]], Any] | None = None,
        defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Tokenizer:
        """Load from a RepoFiles: tokenizer.json when present, else ``build(repo, settings)`` from vocab files.

        ``defaults`` are the architecture's tokenizer settings (special tokens, lowercasing, ...), overridden by
        tokenizer_config.json, then special_tokens_map.json, then ``kwargs``. ``adapt(backend, given)`` may change a
        loaded tokenizer.json to match the settings the files and the caller state explicitly (``given``: without
        ``defaults``), as transformers does with BERT's do_lower_case; it returns the backend to use. The chat
        template comes from ``chat_template=`` or the repo (chat_template.jinja, or tokenizer_config.json).
        """
        import tokenizers

        given, config = read_settings(repo, kwargs)
        settings = {**(defaults or {}), **given}
        if "chat_template" not in kwargs:
            from zoo.chat_template import load_chat_template

            settings["chat_template"] = load_chat_template(repo, config)
        settings["name_or_path"] = str(getattr(repo, "identifier", ""))
        if repo.exists(TOKENIZER_FILE):
            path = repo.require(TOKENIZER_FILE)
            try:
                backend = tokenizers.Tokenizer.from_file(str(path))
            except Exception as exc:
                raise TokenizerError(f"{path} is not a valid tokenizers file ({exc}); re-download or re-save it") from None
            if adapt is not None:
                backend = adapt(backend, given)
        elif build is not None:
            backend = build(repo, settings)
        else:
            raise TokenizerError(f"{repo.identifier} has no {TOKENIZER_FILE}, and no plugin says how to build "
                                 f"a tokenizer from its other files")
        return cls(backend, init_kwargs=settings)

    @classmethod
    def from_pretrained(cls, identifier: str | os.PathLike[str], **kwargs: Any) -> Tokenizer:
        """Load a tokenizer: ``Tokenizer.from_pretrained`` resolves the architecture as zoo.AutoTokenizer does; a
        plugin's class (``zoo.BertTokenizer``) builds its own architecture's tokenizer from the folder's files."""
        from zoo.auto import AutoTokenizer, build_tokenizer
        from zoo.configuration import split_hub_kwargs
        from zoo.hub import repo_files
        from zoo.registry import get_registry

        if cls.model_type is None:
            return AutoTokenizer.from_pretrained(identifier, **kwargs)
        arch = get_registry().architecture(cls.model_type)
        return build_tokenizer(arch, repo_files(identifier, **split_hub_kwargs(kwargs)), **kwargs)

    # --- vocabulary --------------------------------------------------------------------------------------------------

    @property
    def backend_tokenizer(self) -> Any:
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens (as transformers counts it)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        """Size of the vocabulary with the added tokens: what a model's embeddings must hold."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    def __bool__(self) -> bool:  # a tokenizer is never falsy, whatever its length (as in transformers)
        return True

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> Any:
        """Id of a token (or ids of tokens); a token not in the vocabulary gets the unk id (None without one)."""
        if isinstance(tokens, str):
            found = self._backend.token_to_id(tokens)
            if found is not None:
                return found
            unk = self.special_tokens.get("unk_token")
            return None if unk is None else self._backend.token_to_id(unk)
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int], skip_special_tokens: bool = False) -> Any:
        if isinstance(ids, int):
            return self._backend.id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._backend.id_to_token(int(i)) for i in _as_list(ids) if int(i) not in special]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join tokens into text with the backend's decoder (WordPiece ``##`` pieces, byte-level bytes)."""
        decoder = self._backend.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._backend.num_special_tokens_to_add(pair)

    def tokenize(self, text: str, text_pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        return self._backend.encode(text, text_pair, add_special_tokens=add_special_tokens).tokens

    # --- encoding ----------------------------------------------------------------------------------------------------

    def __call__(
        self,
        text: Any = None,
        text_pair: Any = None,
        text_target: Any = None,
        text_pair_target: Any = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        max_target_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode one text (or pair) or a batch, like a transformers fast tokenizer.

        Inputs: a string, a list of strings, a list of ``(text, text_pair)`` pairs (tuples or two-item lists), or
        ``text`` with ``text_pair``; with ``is_split_into_words``, word lists. ``text_target`` (and
        ``text_pair_target``) are encoded the same way and returned as ``labels`` beside the inputs, or alone when
        no ``text`` is given. ``padding``: False, True/"longest" or "max_length"; ``truncation``: False,
        True/"longest_first", "only_first" or "only_second" (default: off, unless ``max_length`` is given; without
        ``max_length`` it cuts at ``model_max_length``); ``return_tensors``: None (lists), "pt" or "np".
        Overflowing windows (``return_overflowing_tokens`` with ``stride``) come back as extra rows with
        ``overflow_to_sample_mapping``.
        """
        if text is None and text_pair is not None:
            raise TokenizerError("text_pair was given without text; pass the first sequence as text")
        if text is None and text_target is None:
            raise TokenizerError("nothing to encode: pass text (and optionally text_pair) or text_target")
        recorded = self.model_max_length if self.model_max_length < VERY_LARGE_INTEGER else None
        steps = plan(padding, truncation, max_length, recorded)
        check_plan(steps, stride, pad_to_multiple_of)
        target_steps = steps.for_targets(max_target_length)
        if text_target is not None:
            check_plan(target_steps, stride, pad_to_multiple_of)
        side = _side("padding_side", padding_side or self.padding_side)
        options = dict(add_special_tokens=add_special_tokens, stride=stride, is_split_into_words=is_split_into_words,
                       pad_to_multiple_of=pad_to_multiple_of, padding_side=side, return_tensors=return_tensors,
                       return_token_type_ids=return_token_type_ids, return_attention_mask=return_attention_mask,
                       return_overflowing_tokens=return_overflowing_tokens,
                       return_special_tokens_mask=return_special_tokens_mask,
                       return_offsets_mapping=return_offsets_mapping, return_length=return_length, verbose=verbose)
        if text_target is None:
            return self._encode(text, text_pair, steps, **options)
        targets = self._encode(text_target, text_pair_target, target_steps, **options)
        if text is None:
            return targets
        encoded = self._encode(text, text_pair, steps, **options)
        encoded["labels"] = targets["input_ids"]
        return encoded

    def _encode(self, text: Any, text_pair: Any, steps: Plan, *, add_special_tokens: bool, stride: int,
                is_split_into_words: bool, pad_to_multiple_of: int | None, padding_side: str,
                return_tensors: str | None, return_token_type_ids: bool | None, return_attention_mask: bool | None,
                return_overflowing_tokens: bool, return_special_tokens_mask: bool, return_offsets_mapping: bool,
                return_length: bool, verbose: bool) -> BatchEncoding:
        inputs, batched = batch_inputs(text, text_pair, is_split_into_words)
        limit = steps.limit
        with self._lock:
            backend = self._backend
            if steps.trunc and limit is not None:
                try:
                    backend.enable_truncation(limit, stride=stride, strategy=steps.trunc, direction=self.truncation_side)
                except Exception as exc:
                    raise TokenizerError(f"cannot truncate to max_length={limit} with stride={stride}: {exc}") from None
            else:
                backend.no_truncation()
            if steps.pad:
                pad_id = self.pad_token_id
                if pad_id is None:
                    raise TokenizerError("this tokenizer has no pad_token, so it cannot pad; set one first "
                                         "(tokenizer.pad_token = tokenizer.eos_token, or add_special_tokens("
                                         "{'pad_token': '[PAD]'})) or pass padding=False")
                backend.enable_padding(direction=padding_side, pad_id=pad_id, pad_type_id=self.pad_token_type_id,
                                       pad_token=self.pad_token, length=limit if steps.pad == "max_length" else None,
                                       pad_to_multiple_of=pad_to_multiple_of)
            else:
                backend.no_padding()
            try:
                encodings = backend.encode_batch(inputs, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words)
            except Exception as exc:
                raise TokenizerError(f"tokenizers failed to encode the input: {exc}") from None
            except BaseException as exc:
                # A Rust panic surfaces as pyo3's PanicException, a BaseException that `except Exception` in the
                # caller would miss; it happens when a pair leaves a side no longer than the stride
                if type(exc).__name__ != "PanicException":
                    raise
                raise TokenizerError(f"tokenizers cannot encode this input with max_length={limit} and "
                                     f"stride={stride}: {str(exc).splitlines()[0]}; use a smaller stride or a larger "
                                     f"max_length") from None
            finally:
                backend.no_truncation()
                backend.no_padding()

        rows, mapping = [], []
        for i, enc in enumerate(encodings):
            rows.append(enc)
            mapping.append(i)
            if return_overflowing_tokens:
                for extra in enc.overflowing:
                    rows.append(extra)
                    mapping.append(i)
        if steps.bound is None and verbose:
            self._warn_if_too_long(rows)

        want_types = "token_type_ids" in self.model_input_names if return_token_type_ids is None else return_token_type_ids
        want_mask = "attention_mask" in self.model_input_names if return_attention_mask is None else return_attention_mask
        data: dict[str, Any] = {"input_ids": [e.ids for e in rows]}
        if want_types:
            data["token_type_ids"] = [e.type_ids for e in rows]
        if want_mask:
            data["attention_mask"] = [e.attention_mask for e in rows]
        if return_special_tokens_mask:
            data["special_tokens_mask"] = [e.special_tokens_mask for e in rows]
        if return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in rows]
        if return_length:
            data["length"] = [len(e.ids) for e in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = mapping
        if not batched and not return_overflowing_tokens and return_tensors is None:
            # transformers unwraps only the per-token lists: "length" of one text stays [n]
            data = {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
        if return_tensors is not None:
            data = {k: _to_tensor(k, v, return_tensors) for k, v in data.items()}
        return BatchEncoding(data, rows)

    def _warn_if_too_long(self, rows: list[Any]) -> None:
        """transformers' warning (once per tokenizer) for output the model cannot take, when nothing cut it."""
        longest = max((len(e.ids) for e in rows), default=0)
        if longest > self.model_max_length and self.model_max_length and not self._warned_long:
            self._warned_long = True
            logger.warning("Token indices sequence length is longer than the specified maximum sequence length for "
                           "this model (%d > %d). Running this sequence through the model will result in indexing "
                           "errors; pass truncation=True to cut it", longest, self.model_max_length)

    def encode(self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True, **kwargs: Any) -> list[int]:
        """Token ids of one text (or pair)."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes one string; got {type(text).__name__} (call the tokenizer for batches)")
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def pad(
        self,
        encoded_inputs: Any,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Pad encodings made earlier, as data collators do: a list of encodings (dicts), one encoding, or a dict
        of lists; lists, tensors or arrays. Pads input_ids with the pad id, attention_mask with 0, token_type_ids
        with the pad type id and special_tokens_mask with 1 (other keys, such as labels, are left alone, as in
        transformers). Tensors in give tensors out unless ``return_tensors`` says otherwise."""
        return pad_encodings(self, encoded_inputs, padding=padding, max_length=max_length,
                             pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side,
                             return_attention_mask=return_attention_mask, return_tensors=return_tensors)

    # --- decoding ----------------------------------------------------------------------------------------------------

    def decode(self, ids: Any, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> Any:
        """Text of one sequence of ids (a list, a tensor, an array or one id); a batch gives a list of texts."""
        ids = [ids] if isinstance(ids, int) else _as_list(ids)
        if ids and isinstance(ids[0], (list, tuple)):  # a batch, which transformers 5 decodes row by row
            return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces) for row in ids]
        text = self._backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        cleanup = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        # transformers skips the clean-up for BPE models, where it would delete real spaces, unless forced
        force_bpe = self.init_kwargs.get("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
        if cleanup and (type(self._backend.model).__name__ != "BPE" or force_bpe):
            text = clean_up_tokenization(text)
        return text

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        sequences = _as_list(sequences)
        if sequences and not isinstance(sequences[0], (list, tuple)):  # one flat sequence, as transformers allows
            sequences = [sequences]
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    # --- chat templates ----------------------------------------------------------------------------------------------

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
        """Render ``conversation`` (a list of {"role", "content"} messages, or a batch of them) with the chat
        template, in a sandbox; the options are transformers' (add_generation_prompt, tokenize, return_tensors,
        return_dict, tools, documents, chat_template, ...). See zoo.chat_template."""
        from zoo.chat_template import apply_chat_template

        return apply_chat_template(self, conversation, **kwargs)

    # --- saving ------------------------------------------------------------------------------------------------------

    def save_pretrained(self, folder: str | os.PathLike[str]) -> tuple[Path, ...]:
        """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json and the chat template files
        (chat_template.jinja, chat_templates/<name>.jinja), readable by transformers.

        Every file is serialised and written to a temporary name before any is renamed into place, so a failure
        (an unserialisable setting, a full disk) leaves an existing folder as it was.
        """
        folder = Path(folder)
        with self._lock:
            backend_json = self._backend.to_str(pretty=True)
        config, special_map = saved_settings(self)
        texts = {TOKENIZER_FILE: backend_json}
        for name, data in ((TOKENIZER_CONFIG_FILE, config), (SPECIAL_TOKENS_MAP_FILE, special_map)):
            texts[name] = json_text(name, data)
        if self.chat_template is not None:
            from zoo.chat_template import chat_template_files

            texts.update(chat_template_files(self.chat_template))
        folder.mkdir(parents=True, exist_ok=True)
        return _write_files_atomic(folder, texts)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(class={self.tokenizer_class}, vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, special_tokens={self.special_tokens})")


def _side(what: str, value: Any) -> str:
    if value not in _SIDES:
        raise TokenizerError(f"{what} must be 'left' or 'right', got {value!r}")
    return value


def clean_up_tokenization(text: str) -> str:
    """transformers' clean-up of WordPiece-style spaces before punctuation and contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text
