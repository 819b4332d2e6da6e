"""Declarative constraints on Config fields, checked in one pass when a config is read.

An architecture declares what each field may be next to its annotation, and the base :class:`~zoo.configuration.Config`
checks every declared field of every config the same way, so a third-party plugin's config is checked as strictly as
the built-in ones without writing a ``validate`` method::

    class BertConfig(Config):
        hidden_size: int = Field(768, ge=1, le=MAX_WIDTH, divisible_by="num_attention_heads")
        num_attention_heads: int = Field(12, ge=1, le=MAX_HEADS)
        hidden_dropout_prob: float = Field(0.1, ge=0, le=1)

The check, in order: the type the annotation names (``int``, ``float``, ``bool``, ``str``, ``None``, ``list[...]``
and unions of them; bool is not an int; an int is a float; a float must be finite), then each Field's bounds
(``ge``/``gt``/``le``/``lt``: a number, or the name of another field), ``divisible_by`` (a number or a field name),
``choices`` and, for lists, ``min_len``/``max_len`` (bounds then apply to every item). The first violation is a
:class:`~zoo.errors.ConfigError` naming the field, its value and what is allowed.

The ``MAX_*`` bounds are sanity limits, each far above any published model (the largest have a few hundred layers,
a hidden size near 25k and vocabularies near 1M): a value past them is a typo or an attack, and refusing it here is
what stops ``num_hidden_layers: 1000000000`` from building modules until memory runs out.
"""

from __future__ import annotations

import math
import re
from typing import Any

from zoo.errors import ConfigError

MAX_LAYERS = 1024
MAX_HEADS = 4096
MAX_WIDTH = 2**18  # hidden and intermediate sizes
MAX_VOCAB = 2**24
MAX_POSITIONS = 2**21
MAX_LABELS = 2**20
MAX_CHANNELS = 2**16
MAX_IMAGE_SIZE = 2**16


class Field:
    """A field's default and what its value may be. Numbers in bounds may be replaced by another field's name."""

    __slots__ = ("default", "ge", "gt", "le", "lt", "divisible_by", "choices", "min_len", "max_len", "hint")

    def __init__(self, default: Any, *, ge: float | str | None = None, gt: float | str | None = None,
                 le: float | str | None = None, lt: float | str | None = None, divisible_by: int | str | None = None,
                 choices: tuple[Any, ...] | None = None, min_len: int | None = None, max_len: int | None = None,
                 hint: str | None = None) -> None:
        self.default = default
        self.ge, self.gt, self.le, self.lt = ge, gt, le, lt
        self.divisible_by = divisible_by
        self.choices = tuple(choices) if choices is not None else None
        self.min_len, self.max_len = min_len, max_len
        self.hint = hint

    def __repr__(self) -> str:
        spec = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__[1:] if getattr(self, k) is not None)
        return f"Field({self.default!r}{', ' if spec else ''}{spec})"


def field_error(config: Any, key: str, value: Any, problem: str, allowed: str, hint: str | None = None) -> ConfigError:
    """The ConfigError for one field; ``.field`` lets the caller add where the value came from (file or argument)."""
    message = f"{type(config).__name__} field '{key}' is {_show(value)}{problem}; allowed: {allowed}"
    if hint:
        message += f"; {hint}"
    error = ConfigError(message)
    error.field = key  # type: ignore[attr-defined]
    return error


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- types ------------------------------------------------------------------------------------------------------------------


def _split_union(annotation: str) -> list[str]:
    """``"int | list[int] | None"`` -> ``["int", "list[int]", "None"]`` (a ``|`` inside brackets is not split)."""
    parts, depth, current = [], 0, ""
    for char in annotation:
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _matches(value: Any, annotation: str) -> bool | None:
    """Whether ``value`` has the annotated type; None when the annotation is not one this module checks."""
    if annotation in ("Any", "object"):
        return None
    if annotation == "None":
        return value is None
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation == "str":
        return isinstance(value, str)
    match = re.fullmatch(r"(list|tuple)\[(.+?)(?:, \.\.\.)?\]", annotation)
    if match:
        if not isinstance(value, (list, tuple)):
            return False
        results = [_matches_union(item, match.group(2)) for item in value]
        return None if any(r is None for r in results) else all(results)
    if re.fullmatch(r"dict\[.+\]|dict", annotation):
        return isinstance(value, dict)
    return None


def _matches_union(value: Any, annotation: str) -> bool | None:
    results = [_matches(value, part) for part in _split_union(annotation)]
    if any(results):
        return True
    return None if any(r is None for r in results) else False


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    return False


def check_type(config: Any, key: str, annotation: str, value: Any) -> None:
    ok = _matches_union(value, annotation)
    if ok is False:
        raise field_error(config, key, value, f" (a {type(value).__name__})", f"a value of type {annotation}")
    if ok and _non_finite(value):
        raise field_error(config, key, value, "", "a finite number")


# --- constraints ------------------------------------------------------------------------------------------------------------


def _bound(config: Any, bound: float | str) -> tuple[Any, str]:
    """A bound's value and how to name it: ``(4, "num_attention_heads (4)")`` or ``(1, "1")``."""
    if isinstance(bound, str):
        value = getattr(config, bound)
        return value, f"{bound} ({value})"
    return bound, f"{bound}"


def describe(config: Any, spec: Field, annotation: str) -> str:
    """What a Field allows, in words: ``an int >= 1 and <= 1024, a multiple of num_attention_heads (12)``."""
    parts_of = [re.sub(r"^(list|tuple)\[(.+?)(, \.\.\.)?\]$", r"\2", p) for p in _split_union(annotation)]
    kind = next((t for t in ("int", "float", "str", "bool") if t in parts_of), "value")
    article = "an" if kind == "int" else "a"
    parts = [f"{article} {kind}"]
    for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        bound = getattr(spec, name)
        if bound is not None:
            parts.append(f"{symbol} {_bound(config, bound)[1]}")
    text = " ".join(parts[:1]) + (" " + " and ".join(parts[1:]) if len(parts) > 1 else "")
    if spec.divisible_by is not None:
        text += f", a multiple of {_bound(config, spec.divisible_by)[1]}"
    if spec.choices is not None:
        text = "one of " + ", ".join(repr(c) for c in spec.choices)
    if spec.min_len is not None or spec.max_len is not None:
        lengths = f"{spec.min_len or 0} to {spec.max_len}" if spec.max_len is not None else f"at least {spec.min_len}"
        text = f"a list of {lengths} items, each {text}"
    if "None" in _split_union(annotation):
        text += ", or null"
    return text


def _violation(config: Any, spec: Field, value: Any) -> str | None:
    """Why one scalar value breaks the spec (``" < 1"``), or None."""
    if spec.choices is not None and value not in spec.choices:
        return ""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    for name, fails in (("ge", lambda v, b: v < b), ("gt", lambda v, b: v <= b),
                        ("le", lambda v, b: v > b), ("lt", lambda v, b: v >= b)):
        bound = getattr(spec, name)
        if bound is None:
            continue
        limit, label = _bound(config, bound)
        if isinstance(limit, (int, float)) and not isinstance(limit, bool) and fails(value, limit):
            symbol = {"ge": "<", "gt": "<=", "le": ">", "lt": ">="}[name]
            return f", which is {symbol} {label}"
    if spec.divisible_by is not None:
        divisor, label = _bound(config, spec.divisible_by)
        if isinstance(divisor, int) and not isinstance(divisor, bool) and divisor > 0 and value % divisor:
            return f", which is not a multiple of {label}"
    return None


def cross_field(spec: Field) -> bool:
    """Whether a Field compares with another field (checked after every field's own bounds)."""
    return any(isinstance(getattr(spec, k), str) for k in ("ge", "gt", "le", "lt", "divisible_by"))


def check_constraints(config: Any, key: str, annotation: str, spec: Field, value: Any) -> None:
    if value is None:
        return  # the type check has already said whether None is allowed
    if isinstance(value, (list, tuple)) and (spec.min_len is not None or spec.max_len is not None):
        n = len(value)
        if (spec.min_len is not None and n < spec.min_len) or (spec.max_len is not None and n > spec.max_len):
            raise field_error(config, key, value, f" ({n} items)", describe(config, spec, annotation), spec.hint)
        for i, item in enumerate(value):
            problem = _violation(config, spec, item)
            if problem is not None:
                raise field_error(config, key, value, f" (item {i}: {item!r}{problem})", describe(config, spec, annotation),
                                  spec.hint)
        return
    problem = _violation(config, spec, value)
    if problem is not None:
        raise field_error(config, key, value, problem, describe(config, spec, annotation), spec.hint)
