"""One Tokenizer class over the Rust ``tokenizers`` library, for every architecture.

The algorithm (WordPiece, byte-level BPE, ...) always runs in ``tokenizers``; this module only reads the files the
Hub publishes (``tokenizer.json``, or the vocab files a plugin builds a pipeline from, plus
``tokenizer_config.json`` / ``special_tokens_map.json``), applies per-call padding and truncation, and returns
what transformers' fast tokenizers return (``BatchEncoding`` with input_ids, token_type_ids, attention_mask,
offsets, overflowing windows), so the two are interchangeable (tokenization_utils_tokenizers.py).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from zoo.configuration import read_json
from zoo.errors import TokenizerError

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"  # legacy: {token: id} of tokens added after the vocab
#: transformers' stand-in for "no limit" when a tokenizer records no model_max_length.
VERY_LARGE_INTEGER = int(1e30)
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

_TRUNCATION = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
               "only_second": "only_second", False: None, "do_not_truncate": None, None: None}
_PADDING = {True: "longest", "longest": "longest", "max_length": "max_length", False: None, "do_not_pad": None, None: None}


def _token_content(value: Any) -> str | None:
    """Special tokens are written as strings or AddedToken dicts ({"content": ...}), or passed as AddedToken."""
    if isinstance(value, dict):
        return value.get("content")
    if value is not None and not isinstance(value, str) and hasattr(value, "content"):
        return value.content
    return value


def _added_token(value: Any, special: bool | None) -> Any:
    """A tokenizers.AddedToken from a string, an AddedToken dict or an AddedToken; ``special`` forces the flag
    (None: keep it)."""
    from tokenizers import AddedToken

    if isinstance(value, AddedToken):
        value = {k: getattr(value, k) for k in ("content", "single_word", "lstrip", "rstrip", "normalized", "special")}
    if not isinstance(value, dict):
        return AddedToken(str(value), special=bool(special), normalized=not special)
    flags = {k: value[k] for k in ("single_word", "lstrip", "rstrip", "normalized") if value.get(k) is not None}
    is_special = bool(value.get("special", False)) if special is None else special
    flags.setdefault("normalized", not is_special)
    return AddedToken(str(value["content"]), special=is_special, **flags)


def _legacy_added_tokens(tokens: dict[str, Any], settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """added_tokens.json as an added_tokens_decoder: special if a special token names it, else normalized."""
    special = {_token_content(settings.get(n)) for n in SPECIAL_TOKEN_NAMES}
    extra = settings.get("additional_special_tokens") or settings.get("extra_special_tokens") or []
    special.update(_token_content(t) for t in (extra.values() if isinstance(extra, dict) else extra))
    decoder = {}
    for content, index in tokens.items():
        if not isinstance(index, int):
            raise TokenizerError(f"{ADDED_TOKENS_FILE} maps {content!r} to {index!r}; it must map tokens to integer ids")
        decoder[str(index)] = {"content": content, "special": content in special, "normalized": content not in special}
    return decoder


class BatchEncoding(dict):
    """The tokenizer's output: a dict of model inputs with attribute access, ``.to(device)`` and word alignment."""

    def __init__(self, data: dict[str, Any], encodings: list[Any] | None = None) -> None:
        super().__init__(data)
        self.encodings = encodings

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> BatchEncoding:
        """Move every tensor to ``device`` (in place; returns self, like transformers)."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Index of the word each token comes from (None for special tokens)."""
        if not self.encodings:
            raise TokenizerError("word_ids needs the Rust encodings; they are kept only by Tokenizer.__call__")
        return self.encodings[batch_index].word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0 or 1 for the sequence of a pair each token belongs to (None for special tokens)."""
        if not self.encodings:
            raise TokenizerError("sequence_ids needs the Rust encodings; they are kept only by Tokenizer.__call__")
        return self.encodings[batch_index].sequence_ids

    def tokens(self, batch_index: int = 0) -> list[str]:
        if not self.encodings:
            raise TokenizerError("tokens needs the Rust encodings; they are kept only by Tokenizer.__call__")
        return self.encodings[batch_index].tokens


class Tokenizer:
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
        self._lock = threading.Lock()  # padding/truncation are set on the shared backend per call
        self.init_kwargs: dict[str, Any] = dict(init_kwargs or {})
        kw = self.init_kwargs
        self.tokenizer_class = kw.get("tokenizer_class") or tokenizer_class
        self.model_input_names = tuple(kw.get("model_input_names") or model_input_names)
        self.model_max_length = int(kw.get("model_max_length") or VERY_LARGE_INTEGER)
        self.padding_side = kw.get("padding_side", "right")
        self.truncation_side = kw.get("truncation_side", "right")
        self.clean_up_tokenization_spaces = bool(kw.get("clean_up_tokenization_spaces", False))
        for side in (self.padding_side, self.truncation_side):
            if side not in ("left", "right"):
                raise TokenizerError(f"padding_side/truncation_side must be 'left' or 'right', got {side!r}")
        self.special_tokens: dict[str, str] = {}
        for name in SPECIAL_TOKEN_NAMES:
            content = _token_content(kw.get(name))
            if content is not None:
                self.special_tokens[name] = content
        extra = kw.get("additional_special_tokens") or kw.get("extra_special_tokens") or []
        if isinstance(extra, dict):  # transformers 5's model-specific form: {"image_token": "<image>", ...}
            extra = list(extra.values())
        self.additional_special_tokens = [_token_content(t) for t in extra if _token_content(t)]
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
        named = [_added_token(self.init_kwargs[n], special=True) for n in self.special_tokens]
        known = {t.content for t in self._backend.get_added_tokens_decoder().values()}
        missing = []
        for token in [*listed, *named, *(_added_token(t, special=True) for t in extra if _token_content(t))]:
            if token.content not in known:
                known.add(token.content)
                missing.append(token)
        if missing:  # one call, so new tokens get consecutive ids exactly as transformers assigns them
            self._backend.add_tokens(missing)

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
        ``defaults``), as transformers does with BERT's do_lower_case; it returns the backend to use.
        """
        import tokenizers

        given: dict[str, Any] = {}
        if repo.exists(TOKENIZER_CONFIG_FILE):
            given.update(read_json(repo.require(TOKENIZER_CONFIG_FILE)))
        if repo.exists(SPECIAL_TOKENS_MAP_FILE):
            given.update({k: v for k, v in read_json(repo.require(SPECIAL_TOKENS_MAP_FILE)).items() if v is not None})
        given.update(kwargs)
        if "added_tokens_decoder" not in given and repo.exists(ADDED_TOKENS_FILE):
            given["added_tokens_decoder"] = _legacy_added_tokens(read_json(repo.require(ADDED_TOKENS_FILE)), given)
        settings = {**(defaults or {}), **given}
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

    # --- special tokens ----------------------------------------------------------------------------------------------

    def _special(self, name: str) -> str | None:
        return self.special_tokens.get(name)

    def _special_id(self, name: str) -> int | None:
        token = self.special_tokens.get(name)
        return None if token is None else self._backend.token_to_id(token)

    cls_token = property(lambda self: self._special("cls_token"))
    sep_token = property(lambda self: self._special("sep_token"))
    pad_token = property(lambda self: self._special("pad_token"))
    unk_token = property(lambda self: self._special("unk_token"))
    mask_token = property(lambda self: self._special("mask_token"))
    bos_token = property(lambda self: self._special("bos_token"))
    eos_token = property(lambda self: self._special("eos_token"))
    cls_token_id = property(lambda self: self._special_id("cls_token"))
    sep_token_id = property(lambda self: self._special_id("sep_token"))
    pad_token_id = property(lambda self: self._special_id("pad_token"))
    unk_token_id = property(lambda self: self._special_id("unk_token"))
    mask_token_id = property(lambda self: self._special_id("mask_token"))
    bos_token_id = property(lambda self: self._special_id("bos_token"))
    eos_token_id = property(lambda self: self._special_id("eos_token"))

    @property
    def all_special_tokens(self) -> list[str]:
        return list(dict.fromkeys([*self.special_tokens.values(), *self.additional_special_tokens]))

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i in (self._backend.token_to_id(t) for t in self.all_special_tokens) if i is not None]

    # --- vocabulary --------------------------------------------------------------------------------------------------

    @property
    def backend_tokenizer(self) -> Any:
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens (as transformers counts it)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | None | list[int | None]:
        if isinstance(tokens, str):
            found = self._backend.token_to_id(tokens)
            return found if found is not None else self.unk_token_id
        return [self.convert_tokens_to_ids(t) for t in tokens]  # type: ignore[misc]

    def convert_ids_to_tokens(self, ids: int | Iterable[int], skip_special_tokens: bool = False) -> str | None | list[str]:
        if isinstance(ids, int):
            return self._backend.id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._backend.id_to_token(int(i)) for i in _as_list(ids) if int(i) not in special]

    def tokenize(self, text: str, text_pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        return self._backend.encode(text, text_pair, add_special_tokens=add_special_tokens).tokens

    # --- encoding ----------------------------------------------------------------------------------------------------

    def _check_text(self, text: Any, what: str, is_split_into_words: bool) -> None:
        ok_single = (lambda t: isinstance(t, (list, tuple)) and all(isinstance(w, str) for w in t)) if is_split_into_words else (lambda t: isinstance(t, str))
        if ok_single(text):
            return
        if isinstance(text, (list, tuple)) and all(ok_single(t) for t in text):
            return
        expected = "a list of words (or a list of such lists)" if is_split_into_words else "a string or a list of strings"
        found = type(text).__name__ if not isinstance(text, (list, tuple)) else (
            "a list holding " + ", ".join(sorted({type(t).__name__ for t in text if not ok_single(t)})))
        raise TokenizerError(f"{what} must be {expected}; got {found}")

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
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
    ) -> BatchEncoding:
        """Encode one text (or pair) or a batch, like a transformers fast tokenizer.

        ``padding``: False, True/"longest" or "max_length"; ``truncation``: False, True/"longest_first",
        "only_first" or "only_second" (default: off, unless ``max_length`` is given); ``return_tensors``: None
        (lists), "pt" or "np". Overflowing windows (``return_overflowing_tokens`` with ``stride``) come back as
        extra rows with ``overflow_to_sample_mapping``.
        """
        self._check_text(text, "text", is_split_into_words)
        if text_pair is not None:
            self._check_text(text_pair, "text_pair", is_split_into_words)
        batched = _is_batch(text, is_split_into_words)
        texts = list(text) if batched else [text]
        if text_pair is not None:
            if _is_batch(text_pair, is_split_into_words) != batched:
                # without this, a string pair beside a batch would be split into characters, one per text
                what = {True: "a batch", False: "one input"}
                raise TokenizerError(f"text is {what[batched]} but text_pair is {what[not batched]}; pass both as "
                                     f"one input, or both as lists of the same length")
            pairs = list(text_pair) if batched else [text_pair]
            if len(pairs) != len(texts):
                raise TokenizerError(f"got {len(texts)} texts but {len(pairs)} text_pairs; pass one pair per text")
            inputs: list[Any] = list(zip(texts, pairs))
        else:
            inputs = texts
        if not (_is_key(padding, _PADDING) and _is_key(truncation, _TRUNCATION)):
            raise TokenizerError(f"padding must be one of {list(_PADDING)} and truncation one of {list(_TRUNCATION)}; "
                                 f"got padding={padding!r}, truncation={truncation!r}")
        trunc = _TRUNCATION[truncation]
        pad = _PADDING[padding]
        if truncation is None and max_length is not None and not pad:
            # transformers' behaviour: a max_length alone asks for truncation, but beside padding it only sets
            # the padded length (padding="max_length") or is ignored (padding=True)
            trunc = "longest_first"
        limit = max_length if max_length is not None else (self.model_max_length if self.model_max_length < VERY_LARGE_INTEGER else None)
        if pad == "max_length" and limit is None:
            raise TokenizerError("padding='max_length' needs max_length= (this tokenizer records no model_max_length)")
        if stride and not trunc:
            raise TokenizerError("stride only applies with truncation; pass truncation=True or 'only_second'")
        if trunc and pad and pad_to_multiple_of and limit is not None and limit % pad_to_multiple_of:
            raise TokenizerError(f"truncation to max_length={limit} and padding to a multiple of {pad_to_multiple_of} "
                                 f"contradict each other; pick a max_length that is a multiple of {pad_to_multiple_of}")
        side = padding_side or self.padding_side
        if side not in ("left", "right"):
            raise TokenizerError(f"padding_side must be 'left' or 'right', got {side!r}")

        with self._lock:
            backend = self._backend
            if trunc and limit is not None:
                try:
                    backend.enable_truncation(limit, stride=stride, strategy=trunc, direction=self.truncation_side)
                except Exception as exc:
                    raise TokenizerError(f"cannot truncate to max_length={limit} with stride={stride}: {exc}") from None
            else:
                backend.no_truncation()
            if pad:
                pad_id = self.pad_token_id
                if pad_id is None:
                    raise TokenizerError("this tokenizer has no pad_token, so it cannot pad; set tokenizer.special_tokens"
                                         "['pad_token'] (e.g. to the eos token) or pass padding=False")
                backend.enable_padding(direction=side, pad_id=pad_id, pad_type_id=int(self.init_kwargs.get("pad_token_type_id", 0)),
                                       pad_token=self.pad_token, length=limit if pad == "max_length" else None,
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

    def encode(self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True, **kwargs: Any) -> list[int]:
        """Token ids of one text (or pair)."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes one string; got {type(text).__name__} (call the tokenizer for batches)")
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    # --- decoding ----------------------------------------------------------------------------------------------------

    def decode(self, ids: Any, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> str:
        ids = [ids] if isinstance(ids, int) else _as_list(ids)
        if ids and isinstance(ids[0], list):
            raise TokenizerError("decode takes one sequence of ids; use batch_decode for a batch")
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

    # --- saving ------------------------------------------------------------------------------------------------------

    def save_pretrained(self, folder: str | os.PathLike[str]) -> tuple[Path, ...]:
        """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json, readable by transformers.

        Every file is serialised and written to a temporary name before any is renamed into place, so a failure
        (an unserialisable setting, a full disk) leaves an existing folder as it was.
        """
        folder = Path(folder)
        with self._lock:
            backend_json = self._backend.to_str(pretty=True)
        config = copy.deepcopy(self.init_kwargs)
        # added_tokens_decoder: tokenizer.json holds the added tokens, a copy here could only go stale
        for stale in ("tokenizer_file", "name_or_path", "vocab_file", "merges_file", "auto_map", "added_tokens_decoder"):
            config.pop(stale, None)
        config.update(self.special_tokens)
        config.update({
            "tokenizer_class": self.tokenizer_class or config.get("tokenizer_class") or "PreTrainedTokenizerFast",
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "model_input_names": list(self.model_input_names),
        })
        if self.additional_special_tokens:
            config["additional_special_tokens"] = list(self.additional_special_tokens)
        special_map = {**self.special_tokens}
        if self.additional_special_tokens:
            special_map["additional_special_tokens"] = list(self.additional_special_tokens)
        texts = {TOKENIZER_FILE: backend_json}
        for name, data in ((TOKENIZER_CONFIG_FILE, config), (SPECIAL_TOKENS_MAP_FILE, special_map)):
            try:
                texts[name] = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
            except (TypeError, ValueError) as exc:
                bad = sorted(k for k, v in data.items() if not _json_ok(v))
                raise TokenizerError(f"cannot save {name}: the settings {bad} are not JSON ({exc}); "
                                     f"remove them from tokenizer.init_kwargs") from None
        folder.mkdir(parents=True, exist_ok=True)
        return _write_files_atomic(folder, texts)

    def __repr__(self) -> str:
        return (f"Tokenizer(class={self.tokenizer_class}, vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, special_tokens={self.special_tokens})")


def clean_up_tokenization(text: str) -> str:
    """transformers' clean-up of WordPiece-style spaces before punctuation and contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text


def _is_batch(text: Any, is_split_into_words: bool) -> bool:
    """A list of texts is a batch; with ``is_split_into_words`` only a list of word lists is."""
    if not isinstance(text, (list, tuple)):
        return False
    return not is_split_into_words or (len(text) > 0 and isinstance(text[0], (list, tuple)))


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _write_files_atomic(folder: Path, texts: dict[str, str]) -> tuple[Path, ...]:
    """Write every file to a temporary name first, then rename them all: no file is replaced unless all were
    written."""
    tmps: dict[str, Path] = {}
    try:
        for name, text in texts.items():
            tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmps[name] = tmp
            tmp.write_text(text, encoding="utf-8")
        for name, tmp in tmps.items():
            os.replace(tmp, folder / name)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
    return tuple(folder / name for name in texts)


def _is_key(value: Any, table: dict[Any, Any]) -> bool:
    """``value in table`` that answers False, not TypeError, for unhashable values such as lists."""
    try:
        return value in table
    except TypeError:
        return False


def _as_list(ids: Any) -> list[Any]:
    if hasattr(ids, "tolist"):
        return ids.tolist()
    return list(ids)


def _to_tensor(key: str, rows: list[Any], kind: str) -> Any:
    lengths = {len(r) for r in rows} if rows and isinstance(rows[0], list) else set()
    if len(lengths) > 1:
        raise TokenizerError(f"cannot make a tensor of '{key}': the sequences have different lengths {sorted(lengths)}; "
                             f"pass padding=True (and truncation=True for long texts)")
    if kind == "pt":
        import torch

        return torch.tensor(rows, dtype=torch.long)
    if kind == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64)
    raise TokenizerError(f"return_tensors must be 'pt', 'np' or None, got {kind!r}")
