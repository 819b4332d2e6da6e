"""How a tokenizer call reads its arguments: which inputs are one text, a pair or a batch, and which padding and
truncation the options ask for.

The rules are transformers' (tokenization_utils_base.py, ``_get_padding_truncation_strategies``;
tokenization_utils_tokenizers.py, ``_encode_plus``): a list is a batch; inside a batch a tuple or list of two
texts is a pair (``tok([(a, b), (c, d)])``, ``tok([[a, b], [c, d]])``); with ``is_split_into_words`` a list of
words is one input and a list of word lists a batch. A ``max_length`` alone asks for truncation; without one,
``truncation=True`` and ``padding="max_length"`` use ``model_max_length``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from zoo.errors import TokenizerError

TRUNCATION = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
              "only_second": "only_second", False: None, "do_not_truncate": None, None: None}
PADDING = {True: "longest", "longest": "longest", "max_length": "max_length", False: None, "do_not_pad": None, None: None}


def is_key(value: Any, table: dict[Any, Any]) -> bool:
    """``value in table`` that answers False, not TypeError, for unhashable values such as lists."""
    try:
        return value in table
    except TypeError:
        return False


def _is_words(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value)


def _is_pair(value: Any, is_split_into_words: bool) -> bool:
    """Inside a batch: (text, text_pair) as a tuple or a two-item list; with ``is_split_into_words``, two word
    lists (two plain strings there are two words of one input, as the Rust library reads them)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return False
    if is_split_into_words:
        return all(_is_words(v) for v in value) and not all(isinstance(v, str) for v in value)
    return all(isinstance(v, str) for v in value)


def is_batch(text: Any, is_split_into_words: bool) -> bool:
    """A list of texts is a batch; with ``is_split_into_words`` only a list of word lists is."""
    if not isinstance(text, (list, tuple)):
        return False
    return not is_split_into_words or (len(text) > 0 and isinstance(text[0], (list, tuple)))


def check_text(text: Any, what: str, is_split_into_words: bool, pairs_allowed: bool) -> None:
    """Raise a TokenizerError naming what ``text`` should have been."""
    single = _is_words if is_split_into_words else (lambda t: isinstance(t, str))
    if single(text) and not (is_split_into_words and is_batch(text, True)):
        return
    if isinstance(text, (list, tuple)) and all(single(t) or (pairs_allowed and _is_pair(t, is_split_into_words))
                                               for t in text):
        return
    if is_split_into_words:
        expected = "a list of words (or a list of such lists)"
    else:
        expected = "a string or a list of strings" + (" or of (text, text_pair) pairs" if pairs_allowed else "")
    if isinstance(text, (list, tuple)):
        bad = [t for t in text if not (single(t) or (pairs_allowed and _is_pair(t, is_split_into_words)))]
        found = "a list holding " + ", ".join(sorted({type(t).__name__ for t in bad}))
        sized = [t for t in bad if isinstance(t, (list, tuple)) and pairs_allowed and not is_split_into_words]
        if sized:
            found += f" (a pair is exactly two strings; got one of {len(sized[0])} items)"
    else:
        found = type(text).__name__
    raise TokenizerError(f"{what} must be {expected}; got {found}")


def batch_inputs(text: Any, text_pair: Any, is_split_into_words: bool) -> tuple[list[Any], bool]:
    """The list the Rust ``encode_batch`` takes (texts, or (text, pair) tuples) and whether the call was batched."""
    check_text(text, "text", is_split_into_words, pairs_allowed=True)
    if text_pair is not None:
        check_text(text_pair, "text_pair", is_split_into_words, pairs_allowed=False)
    batched = is_batch(text, is_split_into_words)
    texts = list(text) if batched else [text]
    if text_pair is None:
        return [tuple(t) if batched and _is_pair(t, is_split_into_words) else t for t in texts], batched
    if batched and any(_is_pair(t, is_split_into_words) for t in texts):
        raise TokenizerError("text already holds (text, text_pair) pairs, and text_pair was given too; pass the "
                             "pairs in one of the two ways")
    if is_batch(text_pair, is_split_into_words) != batched:
        # without this, a string pair beside a batch would be split into characters, one per text
        what = {True: "a batch", False: "one input"}
        raise TokenizerError(f"text is {what[batched]} but text_pair is {what[not batched]}; pass both as "
                             f"one input, or both as lists of the same length")
    pairs = list(text_pair) if batched else [text_pair]
    if len(pairs) != len(texts):
        raise TokenizerError(f"got {len(texts)} texts but {len(pairs)} text_pairs; pass one pair per text")
    return list(zip(texts, pairs)), batched


@dataclass(frozen=True)
class Plan:
    """The padding and truncation one call asks for."""

    pad: str | None  # None, "longest" or "max_length"
    trunc: str | None  # None, "longest_first", "only_first" or "only_second"
    limit: int | None  # the length truncation and padding="max_length" use (None: no truncation happens)
    #: transformers' resolved max_length: None when nothing bounds the output, which is when a sequence longer
    #: than model_max_length is worth a warning
    bound: int | None

    def for_targets(self, max_target_length: int | None) -> Plan:
        return self if max_target_length is None else replace(self, limit=max_target_length, bound=max_target_length)


def plan(padding: Any, truncation: Any, max_length: int | None, model_max_length: int | None) -> Plan:
    """Padding and truncation as transformers resolves them; ``model_max_length`` is None when not recorded."""
    if not (is_key(padding, PADDING) and is_key(truncation, TRUNCATION)):
        raise TokenizerError(f"padding must be one of {list(PADDING)} and truncation one of {list(TRUNCATION)}; "
                             f"got padding={padding!r}, truncation={truncation!r}")
    trunc = TRUNCATION[truncation]
    pad = PADDING[padding]
    if truncation is None and max_length is not None and not pad:
        # transformers' behaviour: a max_length alone asks for truncation, but beside padding it only sets
        # the padded length (padding="max_length") or is ignored (padding=True)
        trunc = "longest_first"
    limit = max_length if max_length is not None else model_max_length
    bound = max_length if max_length is not None else (model_max_length if pad == "max_length" or trunc else None)
    return Plan(pad, trunc, limit, bound)


def check_plan(p: Plan, stride: int, pad_to_multiple_of: int | None) -> None:
    if p.pad == "max_length" and p.limit is None:
        raise TokenizerError("padding='max_length' needs max_length= (this tokenizer records no model_max_length)")
    if stride and not p.trunc:
        raise TokenizerError("stride only applies with truncation; pass truncation=True or 'only_second'")
    if p.trunc and p.pad and pad_to_multiple_of and p.limit is not None and p.limit % pad_to_multiple_of:
        raise TokenizerError(f"truncation to max_length={p.limit} and padding to a multiple of {pad_to_multiple_of} "
                             f"contradict each other; pick a max_length that is a multiple of {pad_to_multiple_of}")
