"""Logits processors: what ``generate`` does to the next-token scores before choosing a token.

The classes, their names, their arguments and their arithmetic are transformers' (generation/logits_process.py), so
a processor computes the very same scores, and :func:`build_logits_processors` lines them up in the order of
transformers' ``GenerationMixin._get_logits_processor``: first the processors that constrain (penalties, banned and
forced tokens, length bounds), then the user's own, then, when sampling, the warpers that reshape the distribution
(temperature, top-k, top-p, min-p, typical, epsilon, eta), and last the optional renormalisation. A processor is any
callable ``(input_ids (B, L), scores (B, V)) -> scores``: transformers' own classes and plain functions work too.

Where transformers rebuilds a constant tensor at every step (a mask over the vocabulary), it is built once here;
the values are the same.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import GenerationError

logger = logging.getLogger(__name__)

__all__ = [
    "LogitsProcessor", "LogitsProcessorList", "build_logits_processors",
    "RepetitionPenaltyLogitsProcessor", "NoRepeatNGramLogitsProcessor", "SequenceBiasLogitsProcessor",
    "NoBadWordsLogitsProcessor", "MinLengthLogitsProcessor", "MinNewTokensLengthLogitsProcessor",
    "PrefixConstrainedLogitsProcessor", "ForcedBOSTokenLogitsProcessor", "ForcedEOSTokenLogitsProcessor",
    "InfNanRemoveLogitsProcessor", "ExponentialDecayLengthPenalty", "SuppressTokensLogitsProcessor",
    "SuppressTokensAtBeginLogitsProcessor", "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper",
    "MinPLogitsWarper", "TypicalLogitsWarper", "EpsilonLogitsWarper", "EtaLogitsWarper", "LogitNormalization",
    "apply_repetition_penalty", "apply_top_k", "apply_top_p",
]

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class LogitsProcessor(ABC):
    """Base of the processors: ``processor(input_ids (B, L), scores (B, V)) -> scores (B, V)``; a subclass that
    does not define ``__call__`` cannot be instantiated."""

    @abstractmethod
    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The processed scores (B, V)."""


class LogitsProcessorList(list):
    """Processors applied one after the other."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


def _ids(value: int | Sequence[int] | torch.Tensor, device: Any = None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=torch.long).flatten()
    return torch.tensor([value] if isinstance(value, int) else list(value), dtype=torch.long, device=device)


class _VocabMask:
    """A boolean (V,) mask of some token ids, made for the scores' vocabulary size on first use."""

    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids
        self._mask: torch.Tensor | None = None

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        mask = self._mask
        if mask is None or mask.shape[0] != scores.shape[-1] or mask.device != scores.device:
            vocab = torch.arange(scores.shape[-1], device=scores.device)
            mask = self._mask = torch.isin(vocab, self.ids.to(scores.device))
        return mask


# --- penalties and bans ----------------------------------------------------------------------------------------------


def apply_repetition_penalty(scores: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Divide the positive (multiply the negative) scores of every token already in ``input_ids`` by ``penalty``."""
    return RepetitionPenaltyLogitsProcessor(float(penalty))(input_ids, scores)


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Scores of tokens already in the sequence: divided by ``penalty`` when positive, multiplied when negative
    (Keskar et al. 2019). ``prompt_ignore_length`` (an int, or one per row) leaves that many leading positions out:
    ``generate`` passes each row's left padding, so pad tokens are never penalised."""

    def __init__(self, penalty: float, prompt_ignore_length: int | torch.Tensor | None = None) -> None:
        if not isinstance(penalty, float) or not penalty > 0:
            raise GenerationError(f"repetition_penalty must be a float > 0, got {penalty!r}")
        self.penalty = penalty
        self.prompt_ignore_length = prompt_ignore_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        ignore = self.prompt_ignore_length
        if isinstance(ignore, int):
            input_ids = input_ids[:, ignore:]
        elif isinstance(ignore, torch.Tensor):
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            input_ids = input_ids.masked_fill(positions[None, :] < ignore.to(input_ids.device)[:, None], vocab)
        # ids past the scores' vocabulary (and the ignored ones) land in one spare column, dropped at the end
        input_ids = input_ids.clamp(max=vocab)
        padded = F.pad(scores, (0, 1))  # (B, V + 1)
        score = torch.gather(padded, 1, input_ids)
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        return padded.scatter(1, input_ids, score)[..., :vocab]


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Bans every token that would complete an n-gram already in the sequence (Paulus et al. 2017)."""

    def __init__(self, ngram_size: int) -> None:
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise GenerationError(f"no_repeat_ngram_size must be an int > 0, got {ngram_size!r}")
        self.ngram_size = ngram_size

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        cur_len = input_ids.shape[-1]
        if cur_len < self.ngram_size:
            return scores
        # only windows that start with the current (n-1)-token suffix can be completed by the next token
        prefix = input_ids[:, cur_len + 1 - self.ngram_size :]
        windows = input_ids.unfold(dimension=1, size=self.ngram_size, step=1)  # (B, W, n)
        matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(dim=-1)  # (B, W)
        vocab = scores.shape[-1]
        banned = scores.new_zeros((scores.shape[0], vocab + 1), dtype=torch.bool)
        banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=vocab), vocab), True)
        return scores.masked_fill(banned[:, :vocab], -float("inf"))


class SequenceBiasLogitsProcessor(LogitsProcessor):
    """Adds a bias to the token that would complete a given sequence: ``sequence_bias`` is a list of
    ``[token ids, bias]`` pairs (or a dict of tuples to biases); a one-token sequence is biased at every step."""

    def __init__(self, sequence_bias: Any) -> None:
        if isinstance(sequence_bias, dict):
            self.sequence_bias = {tuple(k): float(v) for k, v in sequence_bias.items()}
        else:
            self.sequence_bias = {tuple(ids): float(bias) for ids, bias in sequence_bias}
        if not self.sequence_bias or any(not ids for ids in self.sequence_bias):
            raise GenerationError(f"sequence_bias must be a non-empty list of [token ids, bias] pairs, got "
                                  f"{sequence_bias!r}")
        self._prepared: tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] | None = None

    def _prepare(self, scores: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
        vocab = scores.shape[-1]
        invalid = sorted({t for ids in self.sequence_bias for t in ids if t >= vocab})
        if invalid:
            raise GenerationError(f"the model's vocabulary has {vocab} tokens, but bad_words_ids/sequence_bias name "
                                  f"tokens {invalid}; use ids of the model's tokenizer")
        single = torch.zeros(vocab, dtype=torch.float, device=scores.device)
        ones = [(ids[0], bias) for ids, bias in self.sequence_bias.items() if len(ids) == 1]
        if ones:
            single[[i for i, _ in ones]] = torch.tensor([b for _, b in ones], device=scores.device)
        groups: dict[int, list[tuple[tuple[int, ...], float]]] = {}
        for ids, bias in self.sequence_bias.items():
            if len(ids) > 1:
                groups.setdefault(len(ids) - 1, []).append((ids, bias))
        multi = [(torch.tensor([ids[:-1] for ids, _ in group], device=scores.device),
                  torch.tensor([ids[-1] for ids, _ in group], device=scores.device),
                  torch.tensor([b for _, b in group], dtype=torch.float, device=scores.device))
                 for group in groups.values()]
        return single, multi

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._prepared is None:
            self._prepared = self._prepare(scores)
        single, multi = self._prepared
        bias = torch.zeros_like(scores)
        bias += single
        for prefixes, last_tokens, biases in multi:
            n = prefixes.shape[1]
            if n > input_ids.shape[1]:
                continue
            matching = (input_ids[:, None, -n:] == prefixes).all(dim=-1)  # (B, sequences)
            bias.index_add_(1, last_tokens, torch.where(matching, biases, 0.0).to(bias.dtype))
        return scores + bias


class NoBadWordsLogitsProcessor(SequenceBiasLogitsProcessor):
    """Never generates the given token sequences (a -inf bias on the token that would complete one). A
    one-token sequence that is an EOS id is left out, as in transformers."""

    def __init__(self, bad_words_ids: list[list[int]], eos_token_id: int | Sequence[int] | torch.Tensor | None = None):
        if not isinstance(bad_words_ids, list) or not bad_words_ids or not all(
                isinstance(seq, list) and seq for seq in bad_words_ids):
            raise GenerationError(f"bad_words_ids must be a non-empty list of lists of token ids, got {bad_words_ids!r}")
        if eos_token_id is not None:
            eos = _ids(eos_token_id).tolist()
            bad_words_ids = [seq for seq in bad_words_ids if all(seq != [i] for i in eos)]
        # only EOS ids were listed (which min_length bans instead): a bias of 0 changes nothing
        super().__init__({tuple(seq): float("-inf") for seq in bad_words_ids} or {(0,): 0.0})


class MinLengthLogitsProcessor(LogitsProcessor):
    """No EOS while the sequence (prompt included) is shorter than ``min_length``."""

    def __init__(self, min_length: int, eos_token_id: int | Sequence[int] | torch.Tensor, device: Any = None) -> None:
        self.min_length = min_length
        self.eos_mask = _VocabMask(_ids(eos_token_id, device))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] < self.min_length:
            return torch.where(self.eos_mask(scores), -math.inf, scores)
        return scores


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """No EOS before ``min_new_tokens`` tokens follow the prompt (of ``prompt_length_to_skip`` tokens)."""

    def __init__(self, prompt_length_to_skip: int, min_new_tokens: int, eos_token_id: int | Sequence[int] | torch.Tensor,
                 device: Any = None) -> None:
        self.prompt_length_to_skip = prompt_length_to_skip
        self.min_new_tokens = min_new_tokens
        self.eos_mask = _VocabMask(_ids(eos_token_id, device))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] - self.prompt_length_to_skip < self.min_new_tokens:
            return torch.where(self.eos_mask(scores), -math.inf, scores)
        return scores


class PrefixConstrainedLogitsProcessor(LogitsProcessor):
    """Only the tokens ``prefix_allowed_tokens_fn(batch_id, sequence)`` allows (De Cao et al. 2021); ``num_beams``
    rows per prompt (beams, or return sequences)."""

    def __init__(self, prefix_allowed_tokens_fn: Callable[[int, torch.Tensor], list[int]], num_beams: int) -> None:
        self._fn = prefix_allowed_tokens_fn
        self._num_beams = num_beams

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        mask = torch.full_like(scores, -math.inf)
        batch = input_ids.shape[0] // self._num_beams
        for batch_id in range(batch):
            for beam_id in range(self._num_beams):
                row = batch_id * self._num_beams + beam_id
                allowed = self._fn(batch_id, input_ids[row])
                if len(allowed) == 0:
                    raise GenerationError(f"prefix_allowed_tokens_fn returned no token for batch row {batch_id}: the "
                                          f"constraint cannot be met; let it allow at least one token (e.g. EOS)")
                mask[row, allowed] = 0
        processed = scores + mask
        # where every allowed token of every beam is already -inf, force them with a score of 0
        stuck = processed.amax(dim=-1).isneginf().view(batch, -1).all(dim=-1, keepdim=True)
        return torch.where(stuck.repeat_interleave(self._num_beams, dim=0), mask, processed)


class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    """The first generated token is ``bos_token_id`` (for a one-token decoder prompt, as in encoder-decoders)."""

    def __init__(self, bos_token_id: int) -> None:
        self.bos_token_id = bos_token_id

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] == 1:
            scores = torch.full_like(scores, -math.inf)
            scores[:, self.bos_token_id] = 0
        return scores


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    """The last token before ``max_length`` is EOS (one of the ids, if several)."""

    def __init__(self, max_length: int, eos_token_id: int | Sequence[int] | torch.Tensor, device: Any = None) -> None:
        self.max_length = max_length
        self.eos_token_id = _ids(eos_token_id, device)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] == self.max_length - 1:
            scores = torch.full_like(scores, -math.inf)
            scores[:, self.eos_token_id.to(scores.device)] = 0
        return scores


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """NaN -> 0, +-inf -> the largest/smallest finite value (so sampling cannot fail on them)."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        out = torch.where(scores != scores, 0.0, scores)
        out = torch.where(scores == float("inf"), torch.finfo(scores.dtype).max, out)
        return torch.where(scores == -float("inf"), torch.finfo(scores.dtype).min, out)


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """After ``start`` new tokens, raises the EOS scores by ``|score| * (factor**n - 1)`` at the n-th token past it."""

    def __init__(self, exponential_decay_length_penalty: tuple[int, float],
                 eos_token_id: int | Sequence[int] | torch.Tensor, input_ids_seq_length: int) -> None:
        self.regulation_start = exponential_decay_length_penalty[0] + input_ids_seq_length
        self.regulation_factor = exponential_decay_length_penalty[1]
        self.eos_token_id = _ids(eos_token_id)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        cur_len = input_ids.shape[-1]
        if cur_len <= self.regulation_start:
            return scores
        eos = self.eos_token_id.to(scores.device)
        penalty = torch.abs(scores[:, eos]) * (pow(self.regulation_factor, cur_len - self.regulation_start) - 1)
        penalty = penalty.masked_fill(~torch.isfinite(scores[:, eos]), 0.0)
        penalties = torch.zeros_like(scores)
        penalties[:, eos] = penalty
        return scores + penalties


class SuppressTokensLogitsProcessor(LogitsProcessor):
    """The given tokens are never generated."""

    def __init__(self, suppress_tokens: Sequence[int], device: Any = None) -> None:
        self.mask = _VocabMask(_ids(list(suppress_tokens), device))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask(scores), -float("inf"), scores)


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    """The given tokens are not generated at position ``begin_index`` (the first new token)."""

    def __init__(self, begin_suppress_tokens: Sequence[int], begin_index: int, device: Any = None) -> None:
        self.mask = _VocabMask(_ids(list(begin_suppress_tokens), device))
        self.begin_index = begin_index

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] == self.begin_index:
            return torch.where(self.mask(scores), -float("inf"), scores)
        return scores


# --- warpers (sampling only) -----------------------------------------------------------------------------------------


class TemperatureLogitsWarper(LogitsProcessor):
    """Scores divided by ``temperature``: < 1 sharpens the distribution, > 1 flattens it."""

    def __init__(self, temperature: float) -> None:
        if not isinstance(temperature, float) or not temperature > 0:
            raise GenerationError(f"temperature must be a float > 0 when sampling, got {temperature!r} (for greedy "
                                  f"decoding pass do_sample=False)")
        self.temperature = temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores / self.temperature


def apply_top_k(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` highest scores (ties with the k-th included), the rest -> -inf."""
    top_k = min(top_k, scores.size(-1))
    threshold = torch.topk(scores, top_k)[0][..., -1, None]
    return scores.masked_fill(scores < threshold, -float("inf"))


class TopKLogitsWarper(LogitsProcessor):
    """Only the ``top_k`` most likely tokens (at least ``min_tokens_to_keep``)."""

    def __init__(self, top_k: int, filter_value: float = -float("inf"), min_tokens_to_keep: int = 1) -> None:
        if not isinstance(top_k, int) or top_k <= 0:
            raise GenerationError(f"top_k must be an int > 0, got {top_k!r}")
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        top_k = min(self.top_k, scores.size(-1))
        return scores.masked_fill(scores < torch.topk(scores, top_k)[0][..., -1, None], self.filter_value)


def apply_top_p(scores: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the smallest set of most probable tokens whose probabilities add up to ``top_p`` or more."""
    return TopPLogitsWarper(top_p, min_tokens_to_keep=min_tokens_to_keep)(None, scores)  # type: ignore[arg-type]


class TopPLogitsWarper(LogitsProcessor):
    """Nucleus sampling (Holtzman et al. 2019): the most likely tokens whose probabilities add up to ``top_p``."""

    def __init__(self, top_p: float, filter_value: float = -float("inf"), min_tokens_to_keep: int = 1) -> None:
        top_p = float(top_p)
        if not 0 <= top_p <= 1.0:
            raise GenerationError(f"top_p must be in [0, 1], got {top_p!r}")
        self.top_p, self.filter_value, self.min_tokens_to_keep = top_p, filter_value, min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - self.top_p)
        remove[..., -self.min_tokens_to_keep :] = 0
        remove = remove.scatter(1, sorted_indices, remove)
        return scores.masked_fill(remove, self.filter_value)


class MinPLogitsWarper(LogitsProcessor):
    """Tokens at least ``min_p`` times as likely as the most likely one (Nguyen et al. 2024)."""

    def __init__(self, min_p: float, filter_value: float = -float("inf"), min_tokens_to_keep: int = 1) -> None:
        if not 0 <= min_p <= 1.0:
            raise GenerationError(f"min_p must be in [0, 1], got {min_p!r}")
        self.min_p, self.filter_value, self.min_tokens_to_keep = min_p, filter_value, min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores, dim=-1)
        remove = probs < self.min_p * probs.amax(dim=-1, keepdim=True)
        keep = torch.topk(probs, min(self.min_tokens_to_keep, probs.shape[-1]), dim=-1).indices
        remove.scatter_(-1, keep, False)
        return scores.masked_fill(remove, self.filter_value)


class TypicalLogitsWarper(LogitsProcessor):
    """Locally typical sampling (Meister et al. 2022): tokens whose information is closest to the entropy, up to
    probability mass ``mass``."""

    def __init__(self, mass: float = 0.9, filter_value: float = -float("inf"), min_tokens_to_keep: int = 1) -> None:
        mass = float(mass)
        if not 0 < mass < 1:
            raise GenerationError(f"typical_p must be in (0, 1), got {mass!r}")
        self.mass, self.filter_value, self.min_tokens_to_keep = mass, filter_value, min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        normalized = F.log_softmax(scores, dim=-1)
        p = torch.exp(normalized)
        ent = -(normalized * p).nansum(-1, keepdim=True)
        shifted = torch.abs((-normalized) - ent)
        sorted_scores, sorted_indices = torch.sort(shifted, descending=False)
        cumulative = scores.gather(-1, sorted_indices).softmax(dim=-1).cumsum(dim=-1)
        last_ind = (cumulative < self.mass).sum(dim=1)
        last_ind.clamp_(max=sorted_scores.shape[-1] - 1)
        remove = sorted_scores > sorted_scores.gather(1, last_ind.view(-1, 1))
        remove[..., : self.min_tokens_to_keep] = 0
        remove = remove.scatter(1, sorted_indices, remove)
        return scores.masked_fill(remove, self.filter_value)


class EpsilonLogitsWarper(LogitsProcessor):
    """Tokens of probability at least ``epsilon`` (Hewitt et al. 2022)."""

    def __init__(self, epsilon: float, filter_value: float = -float("inf"), min_tokens_to_keep: int = 1) -> None:
        epsilon = float(epsilon)
        if not 0 < epsilon < 1:
            raise GenerationError(f"epsilon_cutoff must be in (0, 1), got {epsilon!r}")
        self.epsilon, self.filter_value, self.min_tokens_to_keep = epsilon, filter_value, int(min_tokens_to_keep)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        remove = scores.softmax(dim=-1) < self.epsilon
        top_k = min(self.min_tokens_to_keep, scores.size(-1))
        remove = remove & (scores < torch.topk(scores, top_k)[0][..., -1, None])
        return scores.masked_fill(remove, self.filter_value)


class EtaLogitsWarper(LogitsProcessor):
    """Tokens of probability at least ``min(eta, sqrt(eta) * exp(-entropy))`` (Hewitt et al. 2022)."""

    def __init__(self, epsilon: float, filter_value: float = -float("inf"), min_tokens_to_keep: int = 1,
                 device: Any = None) -> None:
        epsilon = float(epsilon)
        if not 0 < epsilon < 1:
            raise GenerationError(f"eta_cutoff must be in (0, 1), got {epsilon!r}")
        self.epsilon = torch.tensor(epsilon, device=device)
        self.filter_value, self.min_tokens_to_keep = filter_value, int(min_tokens_to_keep)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probabilities = scores.softmax(dim=-1)
        entropy = torch.distributions.Categorical(logits=scores).entropy()
        epsilon = self.epsilon.to(scores.device)
        eta = torch.min(epsilon, torch.sqrt(epsilon) * torch.exp(-entropy))[..., None]
        remove = probabilities < eta
        top_k = min(self.min_tokens_to_keep, scores.size(-1))
        remove = remove & (scores < torch.topk(scores, top_k)[0][..., -1, None])
        return scores.masked_fill(remove, self.filter_value)


class LogitNormalization(LogitsProcessor):
    """Scores as log-probabilities (``renormalize_logits=True``), after every other processor."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.log_softmax(dim=-1)


# --- the list generate uses --------------------------------------------------------------------------------------------


def build_logits_processors(config: Any, *, max_length: int, prompt_length: int, eos: torch.Tensor | None,
                            padding_lengths: torch.Tensor | None, rows_per_prompt: int,
                            custom: Sequence[Processor] = (),
                            prefix_allowed_tokens_fn: Callable[[int, torch.Tensor], list[int]] | None = None,
                            device: Any = None) -> LogitsProcessorList:
    """The processors for one ``generate`` call, in transformers' order (``_get_logits_processor``).

    ``config`` is the call's GenerationConfig, ``max_length`` its resolved total length, ``eos`` the EOS ids (None:
    none), ``padding_lengths`` each row's left padding (None: no padding), ``rows_per_prompt`` the beams or return
    sequences per prompt. ``custom`` processors come after the built-in constraints and before the sampling warpers;
    one of the same class as a built-in one takes its place, as in transformers.
    """
    c = config
    processors = LogitsProcessorList()
    if c.sequence_bias is not None:
        processors.append(SequenceBiasLogitsProcessor(c.sequence_bias))
    if c.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(float(c.repetition_penalty), padding_lengths))
    if c.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(c.no_repeat_ngram_size))
    if c.bad_words_ids is not None:
        processors.append(NoBadWordsLogitsProcessor([list(seq) for seq in c.bad_words_ids], eos))
    if eos is not None and c.min_length > 0:
        processors.append(MinLengthLogitsProcessor(c.min_length, eos, device))
    if eos is not None and c.min_new_tokens is not None and c.min_new_tokens > 0:
        processors.append(MinNewTokensLengthLogitsProcessor(prompt_length, c.min_new_tokens, eos, device))
    if prefix_allowed_tokens_fn is not None:
        processors.append(PrefixConstrainedLogitsProcessor(prefix_allowed_tokens_fn, rows_per_prompt))
    if c.forced_bos_token_id is not None:
        processors.append(ForcedBOSTokenLogitsProcessor(c.forced_bos_token_id))
    if c.forced_eos_token_id is not None:
        processors.append(ForcedEOSTokenLogitsProcessor(max_length, c.forced_eos_token_id, device))
    if c.remove_invalid_values:
        processors.append(InfNanRemoveLogitsProcessor())
    if c.exponential_decay_length_penalty is not None:
        if eos is None:
            raise GenerationError("exponential_decay_length_penalty raises the EOS scores, but no eos_token_id is set; "
                                  "pass eos_token_id")
        processors.append(ExponentialDecayLengthPenalty(tuple(c.exponential_decay_length_penalty), eos, prompt_length))
    if c.suppress_tokens is not None:
        processors.append(SuppressTokensLogitsProcessor(c.suppress_tokens, device))
    if c.begin_suppress_tokens is not None:
        begin = prompt_length if (prompt_length > 1 or c.forced_bos_token_id is None) else prompt_length + 1
        processors.append(SuppressTokensAtBeginLogitsProcessor(c.begin_suppress_tokens, begin, device))
    processors = _merge(processors, custom)
    if c.do_sample:
        # beams keep one more token than there are EOS ids, so a beam can always continue
        keep = (eos.shape[0] + 1 if eos is not None else 2) if c.num_beams > 1 else 1
        if c.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(float(c.temperature)))
        if c.top_k is not None and c.top_k != 0:
            processors.append(TopKLogitsWarper(c.top_k, min_tokens_to_keep=keep))
        if c.top_p < 1.0:
            processors.append(TopPLogitsWarper(c.top_p, min_tokens_to_keep=keep))
        if c.min_p is not None:
            processors.append(MinPLogitsWarper(c.min_p, min_tokens_to_keep=keep))
        if c.typical_p < 1.0:
            processors.append(TypicalLogitsWarper(c.typical_p, min_tokens_to_keep=keep))
        if 0.0 < c.epsilon_cutoff < 1.0:
            processors.append(EpsilonLogitsWarper(c.epsilon_cutoff, min_tokens_to_keep=keep))
        if 0.0 < c.eta_cutoff < 1.0:
            processors.append(EtaLogitsWarper(c.eta_cutoff, min_tokens_to_keep=keep, device=device))
    if c.renormalize_logits:
        processors.append(LogitNormalization())
    return processors


def _merge(defaults: LogitsProcessorList, custom: Sequence[Processor]) -> LogitsProcessorList:
    """transformers' ``_merge_criteria_processor_list``: a custom processor of a built-in one's class replaces it."""
    for processor in custom:
        if not callable(processor):
            raise GenerationError(f"logits_processor must hold callables (input_ids, scores) -> scores, got "
                                  f"{type(processor).__name__}")
    if not custom:
        return defaults
    merged = LogitsProcessorList()
    for default in defaults:
        replacement = next((p for p in custom if type(p) is type(default)), None)
        if replacement is not None:
            logger.warning("a custom %s was passed to generate() and generate() built one too from its options; "
                           "the custom one is used", type(default).__name__)
        merged.append(replacement if replacement is not None else default)
    merged.extend(p for p in custom if p not in merged)
    return merged
