"""Special tokens a user can read and change: ``pad_token``, ``eos_token``, ... with their ``*_id`` twins, the extra
(additional) special tokens, and ``add_tokens`` / ``add_special_tokens``.

The semantics are transformers 5's (tokenization_utils_base.py, ``PreTrainedTokenizerBase.__setattr__``,
``add_special_tokens``; tokenization_utils_tokenizers.py, ``_add_tokens``): assigning ``tok.pad_token`` only
names the token, it does not add it to the vocabulary (an unknown token's id is then the unk id, as there);
``add_special_tokens`` names *and* adds; ``add_tokens`` adds to the Rust backend, whose count of new tokens is the
return value. Model-specific named tokens (``image_token``, from a ``*_token`` setting or a dict-valued
``extra_special_tokens``) are named special tokens too, readable as ``tok.image_token`` / ``tok.image_token_id``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from zoo.errors import TokenizerError

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
#: Keys of ``add_special_tokens``' dict besides the named tokens (the second is transformers 4's spelling).
EXTRA_KEYS = ("extra_special_tokens", "additional_special_tokens")


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


def _is_added_token(value: Any) -> bool:
    from tokenizers import AddedToken

    return isinstance(value, AddedToken)


def model_specific_tokens(settings: dict[str, Any]) -> dict[str, str]:
    """Named special tokens beyond the standard seven, as transformers 5 collects them: every ``*_token`` setting
    holding a token (a string or a serialised AddedToken), then a dict-valued ``extra_special_tokens``."""
    found: dict[str, str] = {}
    for key, value in settings.items():
        if key in SPECIAL_TOKEN_NAMES or not key.endswith("_token"):
            continue
        if isinstance(value, str) or _is_added_token(value) or (isinstance(value, dict) and value.get("__type") == "AddedToken"):
            content = _token_content(value)
            if content is not None:
                found[key] = content
    extra = settings.get("extra_special_tokens")
    if isinstance(extra, dict):
        found.update({k: c for k, c in ((k, _token_content(v)) for k, v in extra.items()) if c is not None})
    return found


def extra_tokens_setting(settings: dict[str, Any]) -> list[Any]:
    """The extra special tokens a config lists: ``extra_special_tokens`` (a list) when it has any, else
    ``additional_special_tokens`` (transformers 4's key), as transformers 5 reads them."""
    extra = settings.get("extra_special_tokens")
    if isinstance(extra, dict) or not extra:
        extra = settings.get("additional_special_tokens") or []
    if not isinstance(extra, (list, tuple)):
        raise TokenizerError(f"additional_special_tokens / extra_special_tokens must be a list of tokens, got "
                             f"{type(extra).__name__}; fix tokenizer_config.json or special_tokens_map.json")
    return [t for t in extra if _token_content(t)]


def _check_token(value: Any, what: str) -> str | None:
    """The content of a token a user assigns: a string, an AddedToken or None (anything else is an error)."""
    if value is None:
        return None
    if isinstance(value, str) or _is_added_token(value):
        return _token_content(value)
    hint = f"; to set it by id, assign {what}_id" if what.endswith("_token") else ""
    raise TokenizerError(f"{what} must be a string, a tokenizers.AddedToken or None, got {type(value).__name__} "
                         f"{value!r}{hint}")


def _token_property(name: str) -> property:
    def get(self: Any) -> str | None:
        return self.special_tokens.get(name)

    def set_(self: Any, value: Any) -> None:
        self._set_special_token(name, value)

    return property(get, set_, doc=f"The {name.replace('_', ' ')}: assign a string, an AddedToken or None (this "
                                   f"names the token; add_special_tokens also adds it to the vocabulary).")


def _token_id_property(name: str) -> property:
    def get(self: Any) -> int | None:
        token = self.special_tokens.get(name)
        return None if token is None else self.convert_tokens_to_ids(token)

    def set_(self: Any, value: Any) -> None:
        self._set_special_token(name, None if value is None else self._token_of_id(value, f"{name}_id"))

    return property(get, set_, doc=f"Id of the {name.replace('_', ' ')} (the unk id for a token not in the "
                                   f"vocabulary, as in transformers); assign an id to make its token the "
                                   f"{name.replace('_', ' ')}.")


class SpecialTokensMixin:
    """The special-token half of Tokenizer. Expects ``_backend``, ``_lock``, ``special_tokens`` (name ->
    content, the standard names first in transformers' order), ``_extra_special_tokens``, and Tokenizer's
    ``convert_tokens_to_ids`` and ``__len__``."""

    _backend: Any
    _lock: Any
    special_tokens: dict[str, str]
    _extra_special_tokens: list[str]

    bos_token = _token_property("bos_token")
    eos_token = _token_property("eos_token")
    unk_token = _token_property("unk_token")
    sep_token = _token_property("sep_token")
    pad_token = _token_property("pad_token")
    cls_token = _token_property("cls_token")
    mask_token = _token_property("mask_token")
    bos_token_id = _token_id_property("bos_token")
    eos_token_id = _token_id_property("eos_token")
    unk_token_id = _token_id_property("unk_token")
    sep_token_id = _token_id_property("sep_token")
    pad_token_id = _token_id_property("pad_token")
    cls_token_id = _token_id_property("cls_token")
    mask_token_id = _token_id_property("mask_token")

    def __getattr__(self, name: str) -> Any:
        """``tok.image_token`` / ``tok.image_token_id`` for model-specific named tokens."""
        tokens = self.__dict__.get("special_tokens") or {}
        if name in tokens:
            return tokens[name]
        base = name.removesuffix("_id")
        if base != name and base in tokens:
            return self.convert_tokens_to_ids(tokens[base])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _set_special_token(self, name: str, value: Any) -> None:
        content = _check_token(value, name)
        tokens = dict(self.special_tokens)
        if content is None:
            tokens.pop(name, None)
        else:
            tokens[name] = content
        self.special_tokens = _ordered(tokens)

    def _token_of_id(self, value: Any, what: str) -> str:
        if isinstance(value, bool):
            raise TokenizerError(f"{what} must be an integer id, got {value!r}")
        try:
            index = operator.index(value)
        except TypeError:
            raise TokenizerError(f"{what} must be an integer id, got {type(value).__name__} {value!r}") from None
        token = self._backend.id_to_token(index) if index >= 0 else None
        if token is None:
            raise TokenizerError(f"{what}={index} is not an id of this tokenizer (ids run from 0 to {len(self) - 1}); "
                                 f"pick an existing id, or add the token with add_special_tokens")
        return token

    # --- the lists ---------------------------------------------------------------------------------------------------

    @property
    def extra_special_tokens(self) -> list[str]:
        """Special tokens beyond the named ones (transformers 5's name; ``additional_special_tokens`` is the same
        list). Assigning a list replaces it without adding anything to the vocabulary."""
        return list(self._extra_special_tokens)

    @extra_special_tokens.setter
    def extra_special_tokens(self, value: Sequence[Any] | None) -> None:
        if value is not None and not isinstance(value, (list, tuple)):
            raise TokenizerError(f"extra_special_tokens must be a list of tokens or None, got {type(value).__name__}")
        self._extra_special_tokens = [c for c in (_check_token(t, "extra_special_tokens") for t in value or ()) if c is not None]

    additional_special_tokens = extra_special_tokens

    @property
    def extra_special_tokens_ids(self) -> list[int | None]:
        return [self.convert_tokens_to_ids(t) for t in self._extra_special_tokens]

    @extra_special_tokens_ids.setter
    def extra_special_tokens_ids(self, value: Sequence[int] | None) -> None:
        self.extra_special_tokens = None if value is None else [
            self._token_of_id(i, "extra_special_tokens_ids") for i in value]

    additional_special_tokens_ids = extra_special_tokens_ids

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """Named special tokens (the standard seven, then model-specific ones) -> content; no extra tokens."""
        return dict(self.special_tokens)

    @property
    def all_special_tokens(self) -> list[str]:
        """Named, then extra special tokens, each once."""
        return list(dict.fromkeys([*self.special_tokens.values(), *self._extra_special_tokens]))

    @property
    def all_special_ids(self) -> list[int]:
        ids = (self.convert_tokens_to_ids(t) for t in self.all_special_tokens)
        return [i for i in ids if i is not None]

    def get_special_tokens_mask(self, token_ids_0: Sequence[int], token_ids_1: Sequence[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 where an id is a special token's, 0 elsewhere, for a sequence that already has its special tokens
        (how data collators call it). To get the mask while encoding, pass ``return_special_tokens_mask=True``."""
        if not already_has_special_tokens or token_ids_1 is not None:
            raise TokenizerError("get_special_tokens_mask works on one sequence that already has its special tokens "
                                 "(already_has_special_tokens=True, no token_ids_1); for text, call the tokenizer "
                                 "with return_special_tokens_mask=True")
        special = set(self.all_special_ids)
        return [1 if int(i) in special else 0 for i in token_ids_0]

    # --- adding tokens -----------------------------------------------------------------------------------------------

    @property
    def added_tokens_decoder(self) -> dict[int, Any]:
        """id -> tokenizers.AddedToken for every token added on top of the model's vocabulary."""
        return self._backend.get_added_tokens_decoder()

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {token.content: index for index, token in sorted(self.added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def add_tokens(self, new_tokens: Any, special_tokens: bool = False) -> int:
        """Add tokens (strings or tokenizers.AddedToken) the backend does not split; returns how many are new.

        ``special_tokens=True`` adds them as special (never normalized, skipped by ``skip_special_tokens``) without
        listing them as extra special tokens, as transformers 5 does. Resize the model's embeddings to
        ``len(tokenizer)`` afterwards.
        """
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        for token in new_tokens:
            if not (isinstance(token, str) or _is_added_token(token)):
                raise TokenizerError(f"add_tokens takes strings or tokenizers.AddedToken objects; got "
                                     f"{type(token).__name__} {token!r}")
        with self._lock:
            add = self._backend.add_special_tokens if special_tokens else self._backend.add_tokens
            return int(add(list(new_tokens)))

    def add_special_tokens(self, special_tokens_dict: dict[str, Any], replace_additional_special_tokens: bool = True,
                           *, replace_extra_special_tokens: bool | None = None) -> int:
        """Name special tokens and add those the vocabulary lacks; returns how many are new.

        Keys: the named tokens (``pad_token``, ...) and ``extra_special_tokens`` (or ``additional_special_tokens``),
        a list that replaces the current extra tokens, or extends them with
        ``replace_additional_special_tokens=False``. Replaced tokens stay in the vocabulary.
        """
        if not special_tokens_dict:
            return 0
        replace = replace_additional_special_tokens if replace_extra_special_tokens is None else replace_extra_special_tokens
        from tokenizers import AddedToken

        wanted = dict(special_tokens_dict)
        if "additional_special_tokens" in wanted and not wanted.get("extra_special_tokens"):
            wanted.pop("extra_special_tokens", None)
            wanted["extra_special_tokens"] = wanted.pop("additional_special_tokens")
        allowed = (*SPECIAL_TOKEN_NAMES, "extra_special_tokens")
        unknown = [k for k in wanted if k not in allowed]
        if unknown:
            raise TokenizerError(f"add_special_tokens got unknown keys {unknown}; the keys are {list(allowed)} "
                                 f"(or additional_special_tokens); add other tokens with add_tokens")

        def as_added(token: Any) -> Any:
            return AddedToken(token, rstrip=False, lstrip=False, normalized=False, special=True) if isinstance(token, str) else token

        to_add: list[Any] = []
        for key, value in wanted.items():
            if key == "extra_special_tokens":
                if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) or _is_added_token(t) for t in value):
                    raise TokenizerError(f"{key} must be a list of strings or tokenizers.AddedToken objects, got {value!r}")
                new = [as_added(t) for t in value if replace or str(t) not in self._extra_special_tokens]
                if replace and new:
                    self._extra_special_tokens = [str(t) for t in new]
                else:
                    self._extra_special_tokens.extend(str(t) for t in new)
                to_add.extend(new)
            else:
                if not (isinstance(value, str) or _is_added_token(value)):
                    raise TokenizerError(f"{key} must be a string or a tokenizers.AddedToken, got "
                                         f"{type(value).__name__} {value!r}")
                value = as_added(value)
                self._set_special_token(key, value)
                to_add.append(value)
        return self.add_tokens(to_add, special_tokens=True)


def _ordered(tokens: dict[str, str]) -> dict[str, str]:
    """The standard names in transformers' order, then model-specific ones as they came."""
    standard = {n: tokens[n] for n in SPECIAL_TOKEN_NAMES if n in tokens}
    return {**standard, **{n: c for n, c in tokens.items() if n not in standard}}
