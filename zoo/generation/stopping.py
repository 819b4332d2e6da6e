"""Stopping criteria: when a generated row is done (transformers' generation/stopping_criteria.py).

A criterion is called after every step with the sequences so far and returns one bool per row; ``generate`` ORs
its built-in ones (the length limit, EOS ids, stop strings, a time budget) with the user's ``stopping_criteria``.
transformers' own criteria follow the same protocol and work here too.

:class:`StopStringCriteria` is transformers' algorithm, not a string search over decoded text: every token of the
vocabulary is turned once into the text (or, for byte-level tokenizers, the bytes) it contributes, and a stop
string matches when it ends inside the last generated token and the tokens before it spell the rest, however the
string is split over tokens ("st" + "op", "sto" + "pper", "las" + "topper"). A stop string that ended before the
last token never matches again, so generation is not stopped by text that was already there.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import GenerationError

logger = logging.getLogger(__name__)

__all__ = ["EosTokenCriteria", "MaxLengthCriteria", "MaxTimeCriteria", "StopStringCriteria", "StoppingCriteria",
           "StoppingCriteriaList"]


class StoppingCriteria(ABC):
    """Base: ``criterion(input_ids (B, L), scores) -> (B,)`` bools, True where the row is done; a subclass that does
    not define ``__call__`` cannot be instantiated."""

    @abstractmethod
    def __call__(self, input_ids: torch.Tensor, scores: tuple[torch.Tensor, ...] | None, **kwargs: Any) -> torch.Tensor:
        """(B,) bools, True where the row is done."""


class StoppingCriteriaList(list):
    """Criteria ORed together."""

    def __call__(self, input_ids: torch.Tensor, scores: tuple[torch.Tensor, ...] | None, **kwargs: Any) -> torch.Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for criterion in self:
            done = done | criterion(input_ids, scores, **kwargs)
        return done

    @property
    def max_length(self) -> int | None:
        return next((c.max_length for c in self if isinstance(c, MaxLengthCriteria)), None)


class MaxLengthCriteria(StoppingCriteria):
    """Done once the sequences (prompt included) have ``max_length`` tokens."""

    def __init__(self, max_length: int, max_position_embeddings: int | None = None) -> None:
        self.max_length = max_length
        self.max_position_embeddings = max_position_embeddings

    def __call__(self, input_ids: torch.Tensor, scores: tuple[torch.Tensor, ...] | None, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), input_ids.shape[1] >= self.max_length, device=input_ids.device,
                          dtype=torch.bool)


class MaxTimeCriteria(StoppingCriteria):
    """Done once ``max_time`` seconds have passed since ``initial_timestamp`` (default: when it was made)."""

    def __init__(self, max_time: float, initial_timestamp: float | None = None) -> None:
        self.max_time = max_time
        self.initial_timestamp = time.time() if initial_timestamp is None else initial_timestamp

    def __call__(self, input_ids: torch.Tensor, scores: tuple[torch.Tensor, ...] | None, **kwargs: Any) -> torch.Tensor:
        late = time.time() - self.initial_timestamp > self.max_time
        return torch.full((input_ids.shape[0],), late, device=input_ids.device, dtype=torch.bool)


class EosTokenCriteria(StoppingCriteria):
    """Done when the last token is one of the EOS ids."""

    def __init__(self, eos_token_id: int | list[int] | torch.Tensor) -> None:
        if not isinstance(eos_token_id, torch.Tensor):
            eos_token_id = torch.tensor([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id))
        self.eos_token_id = eos_token_id

    def __call__(self, input_ids: torch.Tensor, scores: tuple[torch.Tensor, ...] | None, **kwargs: Any) -> torch.Tensor:
        self.eos_token_id = self.eos_token_id.to(input_ids.device)
        return torch.isin(input_ids[:, -1:], self.eos_token_id).any(dim=-1)


# --- stop strings ----------------------------------------------------------------------------------------------------

#: (vocabulary, stop strings, mode) -> what the match needs; the preprocessing walks the whole vocabulary.
_EMBEDDING_CACHE: OrderedDict[tuple, tuple[torch.Tensor, int, int]] = OrderedDict()
_CACHE_SIZE = 8


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (byte-level BPE writes tokens in these characters)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _decoder_has_type(config: Any, kind: str) -> bool:
    if isinstance(config, dict):
        return config.get("type") == kind or any(_decoder_has_type(v, kind) for v in config.values())
    if isinstance(config, list):
        return any(_decoder_has_type(v, kind) for v in config)
    return False


def _matching_mode(tokenizer: Any) -> str | None:
    """'byte_level' (GPT-2-style tokens stand for bytes), 'byte_fallback' (<0xNN> tokens), or None (text)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if decoder is None:
        return None
    if type(decoder).__name__ == "ByteLevel":
        return "byte_level"
    state = getattr(decoder, "__getstate__", lambda: None)()
    if isinstance(state, str):
        state = state.encode()
    try:
        config = json.loads(state) if isinstance(state, bytes) else None
    except json.JSONDecodeError:
        config = None
    if config is not None:
        if _decoder_has_type(config, "ByteFallback"):
            return "byte_fallback"
        if _decoder_has_type(config, "ByteLevel"):
            return "byte_level"
    return None


def _tokens_to_string(tokenizer: Any, tokens: list[str]) -> str:
    if hasattr(tokenizer, "convert_tokens_to_string"):
        return tokenizer.convert_tokens_to_string(tokens)
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    return decoder.decode(tokens) if decoder is not None else " ".join(tokens)


def clean_vocab(tokenizer: Any, mode: str | None, static_prefix: str = "abcdef") -> tuple[tuple[Any, ...], tuple[int, ...]]:
    """Every token as the text (bytes, for byte-level modes) it adds to a decoded sequence, and its id.

    Decoding a token alone may drop or add a leading space (``Ġ``, ``##``, ``▁``), so each token is decoded after
    a fixed prefix, which is then cut off again; byte-level tokens map straight to their bytes.
    """
    vocab = tokenizer.get_vocab()
    byte_decoder = {c: b for b, c in _bytes_to_unicode().items()} if mode == "byte_level" else None
    base_ids = tokenizer(static_prefix, add_special_tokens=False)["input_ids"]
    base_tokens = list(tokenizer.convert_ids_to_tokens(list(base_ids)))
    strings: list[Any] = []
    ids: list[int] = []
    for token, index in vocab.items():
        text: Any = None
        if mode == "byte_level" and all(c in byte_decoder for c in token):  # type: ignore[operator]
            text = bytes(byte_decoder[c] for c in token)  # type: ignore[index]
        elif (mode == "byte_fallback" and len(token) == 6 and token.startswith("<0x") and token.endswith(">")
              and all(c in "0123456789abcdefABCDEF" for c in token[3:5])):
            text = bytes([int(token[3:5], 16)])
        if text is None:
            decoded = _tokens_to_string(tokenizer, base_tokens + [token])
            text = decoded[decoded.index(static_prefix) + len(static_prefix):]
            if mode is not None:
                text = text.encode("utf-8")
        strings.append(text)
        ids.append(index)
    return tuple(strings), tuple(ids)


def _matching_positions(tokens: tuple[Any, ...], ids: tuple[int, ...], stop_strings: tuple[Any, ...]):
    """Per stop string and token: where inside the (reversed) string the token may end (``valid positions``),
    and how many of the string's last characters the token may hold at its start (``end overlaps``)."""
    valid: dict[Any, dict[int, list[int]]] = {}
    ends: dict[Any, dict[int, list[int]]] = {}
    for stop in stop_strings:
        reversed_stop = stop[::-1]
        valid[stop], ends[stop] = {}, {}
        for token, index in zip(tokens, ids):
            reversed_token = token[::-1]
            positions, overlaps = [], []
            i = reversed_stop.find(reversed_token[:1], 1)
            while 0 <= i < len(stop):
                if reversed_token.startswith(reversed_stop[i : i + len(token)]):
                    positions.append(i)
                i = reversed_stop.find(reversed_token[:1], i + 1)
            i = token.find(stop[-1:])
            while i >= 0:
                overlap = min(i + 1, len(stop))
                if token[i + 1 - overlap : i + 1] == stop[-overlap:]:
                    overlaps.append(overlap)
                i = token.find(stop[-1:], i + 1)
            if positions:
                valid[stop][index] = positions
            if overlaps:
                ends[stop][index] = overlaps
    return valid, ends


def _embedding(tokens: tuple[Any, ...], ids: tuple[int, ...], stop_strings: tuple[Any, ...]) -> tuple[torch.Tensor, int, int]:
    """One row per token id: its valid positions for each stop string, its end overlaps, and its length."""
    valid, ends = _matching_positions(tokens, ids, stop_strings)
    max_valid = max((len(v) for per in valid.values() for v in per.values()), default=1)
    end_lens = [len(v) for per in ends.values() for v in per.values()]
    if not end_lens:
        raise GenerationError(f"no token of the tokenizer can end the stop strings {list(stop_strings)!r}; they "
                              f"may hold characters the vocabulary lacks")
    max_end = max(end_lens)
    n = len(stop_strings)
    table = torch.full((max(ids) + 2, n * (max_valid + max_end) + 1), -1, dtype=torch.int32)
    for i, stop in enumerate(stop_strings):
        for index, positions in valid[stop].items():
            table[index, max_valid * i : max_valid * i + len(positions)] = torch.tensor(positions, dtype=torch.int32)
        for index, overlaps in ends[stop].items():
            start = max_valid * n + max_end * i
            table[index, start : start + len(overlaps)] = torch.tensor(overlaps, dtype=torch.int32)
    for token, index in zip(tokens, ids):
        table[index, -1] = len(token)
    return table, max_valid, max_end


class StopStringCriteria(StoppingCriteria):
    """Done when the generated text ends in one of ``stop_strings`` (the string's end falls in the last token).

    ``tokenizer`` is the model's (zoo's or transformers'): its vocabulary is preprocessed once per set of stop
    strings (and kept for the next call).
    """

    def __init__(self, tokenizer: Any, stop_strings: str | list[str]) -> None:
        if tokenizer is None:
            raise GenerationError("stop_strings need the model's tokenizer to tell which tokens spell them; pass "
                                  "generate(..., stop_strings=[...], tokenizer=tokenizer)")
        self.stop_strings = (stop_strings,) if isinstance(stop_strings, str) else tuple(stop_strings)
        mode = _matching_mode(tokenizer)
        targets = self.stop_strings if mode is None else tuple(s.encode("utf-8") for s in self.stop_strings)
        vocab = tokenizer.get_vocab()
        names = tuple(sorted(vocab))
        key = (names, tuple(vocab[t] for t in names), targets, mode)
        if key in _EMBEDDING_CACHE:
            _EMBEDDING_CACHE.move_to_end(key)
        else:
            tokens, ids = clean_vocab(tokenizer, mode)
            _EMBEDDING_CACHE[key] = _embedding(tokens, ids, targets)
            if len(_EMBEDDING_CACHE) > _CACHE_SIZE:
                _EMBEDDING_CACHE.popitem(last=False)
        self.embedding_vec, self.max_valid_positions, self.max_valid_end_lens = _EMBEDDING_CACHE[key]
        self.maximum_token_len = max(len(s) for s in targets)
        self.num_stop_strings = len(targets)
        self.target_lens = torch.tensor([len(s) for s in targets], dtype=torch.int32)

    def __call__(self, input_ids: torch.Tensor, scores: tuple[torch.Tensor, ...] | None, **kwargs: Any) -> torch.Tensor:
        self.embedding_vec = self.embedding_vec.to(input_ids.device)
        self.target_lens = self.target_lens.to(input_ids.device)
        n, max_valid = self.num_stop_strings, self.max_valid_positions
        # walk back from the last token: it must hold the end of a stop string, each earlier one the part before
        flipped = torch.flip(input_ids[:, -self.maximum_token_len :], (1,))
        flipped = torch.clamp(flipped, max=self.embedding_vec.size(0) - 1)
        embedded = F.embedding(flipped, self.embedding_vec)  # (B, T, n * (valid + ends) + 1)
        valid_positions = embedded[:, 1:, : max_valid * n].unflatten(-1, (n, -1))
        end_lengths = embedded[:, :1, max_valid * n : -1].unflatten(-1, (n, -1))
        lengths = embedded[:, 1:, None, -1:].expand((-1, -1, end_lengths.shape[-2], end_lengths.shape[-1]))
        cumsum = torch.cat([end_lengths, lengths], dim=1).cumsum(dim=1)  # characters matched after each token
        initial_match = end_lengths > 0
        later_match = torch.any(cumsum[:, :-1, :, None] == valid_positions[:, :, :, :, None], dim=-2)
        match = torch.cat([initial_match, later_match], dim=1)
        unbroken = (~match).cumsum(dim=1, dtype=torch.int32) == 0
        string_matches = torch.amax(cumsum * unbroken, dim=(1, -1)) >= self.target_lens[None, :]
        return torch.any(string_matches, dim=-1)
