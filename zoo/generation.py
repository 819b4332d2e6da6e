"""Text generation for every causal LM: ``generate()`` with a key/value cache, sampling, stopping and streaming.

A causal LM gets ``generate`` by inheriting :class:`GenerationMixin`. What it must provide is its ordinary
forward pass, taking ``past_key_values`` (a :class:`KVCache` it fills through ``cache.update(layer, k, v)`` and
``cache.advance(n)``), an ``attention_mask`` that may be 2D (padding) or an SDPA-ready boolean 4D mask,
``position_ids``, and ``logits_to_keep`` (score only the last positions). The attention layers turn the mask into
SDPA arguments with :func:`causal_attention_mask`.

The semantics are transformers' (generation/utils.py ``GenerationMixin._sample``, logits_process.py,
streamers.py), so greedy decoding gives the same token ids on the same checkpoint, batched or not:

- left-padded prompts: position ids count real tokens only (``cumsum(mask) - 1``), padding is never attended;
- logits processing in transformers' order: repetition penalty (also when greedy), then, when sampling,
  temperature, top-k, top-p; a token is drawn from the softmax with ``torch.multinomial``;
- each row stops at its own EOS and is filled with ``pad_token_id`` from then on; generation ends when every row
  has stopped or ``max_new_tokens`` were produced;
- streamers receive ``put(prompt_ids)`` once, then ``put(new_ids)`` per step and ``end()``, so transformers'
  streamers work here too.

Speed at batch 1 is bounded by reading every weight once per token; the loop is kept lean to stay near that
bound: one preallocated cache (no ``torch.cat`` per step), one preallocated output buffer, masks built once and
sliced per step (none at all without padding), logits computed for the last position only, and the whole loop
under ``torch.inference_mode``. On CPU, :func:`decode_matmul` spreads each matrix-vector product over the cores
and :func:`project_for_decoding` reads the output embedding in the layout that streams fastest. After the prompt,
a model may decode through its own :meth:`GenerationMixin.decoding_step`: GPT-2's runs a whole step in zoo's
native kernel (:mod:`zoo.native`) where it is built, else the forward pass's maths with every projection prepared
once per call (:class:`DecodingProjection`) and no module tree around it.
"""

from __future__ import annotations

import functools
import logging
import queue
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "GenerationMixin", "KVCache", "DecodingProjection", "causal_attention_mask", "decode_matmul", "decoding_weight",
    "has_forward_hooks", "project_for_decoding",
    "apply_repetition_penalty", "apply_top_k", "apply_top_p",
    "BaseStreamer", "TextStreamer", "TextIteratorStreamer", "stream_generate",
]


# --- key/value cache -----------------------------------------------------------------------------------------------------


class KVCache:
    """Keys and values of every attention layer, preallocated as ``(B, heads, capacity, head_dim)`` per layer.

    Every layer writes the new positions of a forward pass at ``length`` (``update``); the model calls
    ``advance(n)`` once after its last layer. Writing into a fixed buffer costs one small copy per step, where
    ``torch.cat`` would copy the whole past (measured for GPT-2's 12 layers over 80 positions: 0.12-0.17 ms per
    step against 0.21 ms); when the capacity runs out (a forward pass outside ``generate``) the buffer doubles.
    """

    def __init__(self, num_layers: int, batch_size: int, num_heads: int, head_dim: int, capacity: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> None:
        shape = (batch_size, num_heads, max(int(capacity), 1), head_dim)
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def get_seq_length(self) -> int:
        """Positions already cached (transformers' name for it)."""
        return self.length

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``(B, heads, T, head_dim)`` keys/values after the cached ones; return all of them, past + new."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.keys[layer].shape[2]:
            self._grow(layer, end)
        keys, values = self.keys[layer], self.values[layer]
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        return keys[:, :, :end], values[:, :, :end]  # (B, heads, S, head_dim) views, no copy

    def reserve(self, needed: int) -> None:
        """Make room for ``needed`` positions in every layer (buffers at least double), keeping what is cached."""
        for layer in range(len(self.keys)):
            if needed > self.keys[layer].shape[2]:
                self._grow(layer, needed)

    def advance(self, n: int) -> None:
        """Called by the model once its forward pass has written ``n`` new positions in every layer."""
        self.length += n

    def _grow(self, layer: int, needed: int) -> None:
        old_k, old_v = self.keys[layer], self.values[layer]
        capacity = max(needed, 2 * old_k.shape[2])
        for store, old in ((self.keys, old_k), (self.values, old_v)):
            new = old.new_empty((*old.shape[:2], capacity, old.shape[3]))
            new[:, :, : self.length] = old[:, :, : self.length]
            store[layer] = new

    def reorder(self, index: torch.Tensor) -> None:
        """Keep the batch rows ``index`` (in that order), as beam search or dropping finished rows would."""
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]


#: Up to this many rows, a product splits its reduction over the threads (measured on 2 cores: 1.4x-1.8x faster
#: at 1 row, 1.4x at 16; beyond, MKL's own GEMM threading takes over).
SPLIT_MATMUL_MAX_ROWS = 16


def decode_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight + bias`` for ``x`` (M, in) and a row-major ``weight`` (in, out): fast when M is small.

    A decoding step multiplies one row (per sequence) by every weight matrix, a matrix-vector product bound by how
    fast the weight streams from memory. On CPU, MKL runs it on one core, which streams well below what the memory
    delivers to all of them (on the 2-core benchmark machine ~20 GB/s of ~30). Without autograd and for a few rows,
    this splits the ``in`` dimension into one contiguous block of weight rows per thread, lets ``torch.bmm`` run the
    blocks in parallel, and adds the partial products: every core streams its own part of the weight
    (benchmarks/bench_generate.py). Otherwise it is one ``addmm``. The two differ only in summation order.
    """
    rows, inner = x.shape
    threads = torch.get_num_threads()
    if (threads > 1 and rows <= SPLIT_MATMUL_MAX_ROWS and inner % threads == 0 and x.device.type == "cpu"
            and not torch.is_grad_enabled() and weight.is_contiguous()):
        block = inner // threads
        parts = torch.bmm(x.view(rows, threads, block).transpose(0, 1), weight.view(threads, block, -1))  # (P, M, out)
        out = parts.sum(0)  # (M, out)
        return out.add_(bias) if bias is not None else out
    return torch.addmm(bias, x, weight) if bias is not None else x @ weight


def decoding_weight(module: nn.Module) -> torch.Tensor:
    """A contiguous transposed copy of ``module.weight`` for decoding, made once and kept beside the module.

    Which layout of a matrix streams fastest in a matrix-vector product depends on its shape (MKL on the 2-core
    benchmark machine, GPT-2's matrices read one after the other): a row-major ``(in, out)`` matrix, split by rows over the threads, when ``out``
    is the long side (``F.linear`` over the ``(out, in)`` layout of ``nn.Linear`` is ~1.5x slower); the ``(out, in)``
    layout when the product narrows (``in > out``, ~1.15x faster). The output embedding of a small LM, the largest
    matrix, is read through this copy of its ``nn.Linear`` weight (vocab x hidden values: 154 MB for GPT-2), as is
    the narrowing MLP output projection of GPT-2's Conv1D layers. The copy is made on first use and remade
    whenever the weight changes or moves; it is not a buffer, so it is never saved or moved.
    """
    w = module.weight
    try:
        version = w._version
    except RuntimeError:  # an inference tensor has no version counter, and cannot change in place anyway
        version = 0
    key = (w.data_ptr(), version, tuple(w.shape), w.dtype, w.device)
    cached = module.__dict__.get("_decoding_weight")
    if cached is None or cached[0] != key:
        cached = (key, w.detach().t().contiguous())
        module.__dict__["_decoding_weight"] = cached
    return cached[1]


def project_for_decoding(h: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``linear(h)`` for the few positions of a decoding step, without autograd, fast on CPU: through
    :func:`decoding_weight` and :func:`decode_matmul`. Elsewhere (GPU, autograd on) this is plainly ``linear(h)``."""
    if h.device.type != "cpu" or torch.is_grad_enabled():
        return linear(h)
    out = decode_matmul(h.reshape(-1, h.shape[-1]), decoding_weight(linear), linear.bias)  # (B*T, out)
    return out.view(*h.shape[:-1], out.shape[-1])


class DecodingProjection:
    """``x @ W + b`` for the ``(B, in)`` rows of a decoding step, over a weight prepared once per ``generate``.

    What :func:`decode_matmul` does per call is done here once: the ``(in, out)`` weight is viewed as one contiguous
    block of rows per thread, ``(P, in/P, out)``, and the bias is placed in the first block's partial product, so a
    step is one ``baddbmm`` (the blocks in parallel) and one sum. Given ``transposed``, the same matrix as a
    contiguous ``(out, in)`` tensor (:func:`decoding_weight`), each thread instead computes its own block of
    outputs from its rows of it, the faster layout when the product narrows. With one thread, or sizes the threads
    do not divide, it is one block: a plain ``baddbmm``.
    """

    __slots__ = ("weight", "initial", "blocks", "block", "by_output")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 transposed: torch.Tensor | None = None) -> None:
        inner, out = weight.shape
        threads = torch.get_num_threads()
        self.by_output = transposed is not None and threads > 1 and out % threads == 0
        if transposed is not None and (tuple(transposed.shape) != (out, inner) or not transposed.is_contiguous()):
            raise ValueError(f"transposed must be the weight as a contiguous ({out}, {inner}) tensor, got "
                             f"{tuple(transposed.shape)}{'' if transposed.is_contiguous() else ' (not contiguous)'}; "
                             f"pass decoding_weight(module)")
        if self.by_output:
            assert transposed is not None
            self.blocks, self.block = threads, inner
            self.weight = transposed.view(threads, out // threads, inner).transpose(1, 2)  # (P, in, out/P)
            self.initial = weight.new_zeros(threads, 1, out // threads)  # (P, 1, out/P): each block's bias
            if bias is not None:
                self.initial.copy_(bias.detach().view(threads, 1, -1))
            return
        self.blocks = threads if threads > 1 and inner % threads == 0 and weight.is_contiguous() else 1
        self.block = inner // self.blocks
        self.weight = weight.detach().reshape(self.blocks, self.block, out)  # (P, in/P, out), a view
        self.initial = weight.new_zeros(self.blocks, 1, out)  # (P, 1, out): the bias, then zeros
        if bias is not None:
            self.initial[0, 0] = bias.detach()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        if self.by_output:  # every block sees all of x and yields its own outputs
            parts = torch.baddbmm(self.initial, x.expand(self.blocks, rows, self.block), self.weight)  # (P, B, out/P)
            return parts.transpose(0, 1).reshape(rows, -1)  # (B, out)
        parts = torch.baddbmm(self.initial, x.view(rows, self.blocks, self.block).transpose(0, 1), self.weight)
        return parts.sum(0) if self.blocks > 1 else parts[0]  # (B, out)


def has_forward_hooks(module: nn.Module) -> bool:
    """Whether a forward (pre-)hook is registered on ``module``, any submodule, or globally: a decoding step that
    bypasses the modules must not be used then, or the hooks would silently not run."""
    from torch.nn.modules import module as module_globals

    if module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def causal_attention_mask(attention_mask: torch.Tensor | None, q_len: int, past_len: int,
                          device: torch.device | None = None) -> tuple[torch.Tensor | None, bool]:
    """``(attn_mask, is_causal)`` for ``F.scaled_dot_product_attention`` of ``q_len`` new positions after
    ``past_len`` cached ones.

    ``attention_mask`` is None, a ``(B, past_len + q_len)`` 1/0 padding mask, or a 4D mask (boolean, True = attend,
    or additive) used as it is. Without padding no mask tensor is built: SDPA's own causal flag covers the prompt,
    and a single new position may attend to everything before it.
    """
    if attention_mask is not None and attention_mask.dim() == 4:
        return attention_mask, False
    padded = attention_mask is not None and not bool(attention_mask.all())
    if not padded:
        if q_len == 1:
            return None, False
        if past_len == 0:
            return None, True
    kv_len = past_len + q_len
    causal = torch.ones(q_len, kv_len, dtype=torch.bool, device=device).tril(diagonal=past_len)  # (T, S)
    if not padded:
        return causal, False
    assert attention_mask is not None
    if attention_mask.shape[-1] != kv_len:
        raise ValueError(f"attention_mask covers {attention_mask.shape[-1]} positions but the input has {q_len} new "
                         f"and {past_len} cached ones; pass a mask over past and new positions ({kv_len})")
    return causal & attention_mask.bool()[:, None, None, :], False  # (B, 1, T, S)


# --- logits processing (transformers' logits_process.py) -----------------------------------------------------------------


def apply_repetition_penalty(scores: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Divide the positive (multiply the negative) scores of every token already in ``input_ids`` by ``penalty``."""
    score = torch.gather(scores, 1, input_ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return scores.scatter(1, input_ids, score)


def apply_top_k(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` highest scores (ties with the k-th included), the rest -> -inf."""
    top_k = min(top_k, scores.size(-1))
    threshold = torch.topk(scores, top_k)[0][..., -1, None]
    return scores.masked_fill(scores < threshold, -float("inf"))


def apply_top_p(scores: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the smallest set of most probable tokens whose probabilities add up to ``top_p`` or more."""
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -min_tokens_to_keep:] = False
    remove = remove.scatter(1, sorted_indices, remove)
    return scores.masked_fill(remove, -float("inf"))


def _check_options(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float,
                   repetition_penalty: float) -> None:
    problems = []
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        problems.append(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if not temperature > 0:
        problems.append(f"temperature must be > 0, got {temperature!r} (for greedy decoding pass do_sample=False)")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
        problems.append(f"top_k must be an int >= 0 (0 or None: no top-k), got {top_k!r}")
    if not 0 <= top_p <= 1:
        problems.append(f"top_p must be in [0, 1], got {top_p!r}")
    if not repetition_penalty > 0:
        problems.append(f"repetition_penalty must be > 0 (1.0: none), got {repetition_penalty!r}")
    if problems:
        raise ValueError("; ".join(problems))


def _token_list(value: int | Sequence[int] | torch.Tensor | None) -> list[int]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


# --- generate ------------------------------------------------------------------------------------------------------------


class GenerationMixin:
    """``generate()`` for a causal LM whose forward takes ``past_key_values``, ``position_ids``, ``logits_to_keep``.

    The model's config supplies the cache shape (``num_hidden_layers``, ``num_attention_heads`` and
    ``hidden_size``, or ``num_key_value_heads`` / ``head_dim`` where the architecture has them) and the default
    ``eos_token_id`` / ``pad_token_id``; override :meth:`new_kv_cache` for another layout.
    """

    def new_kv_cache(self, batch_size: int, capacity: int) -> KVCache:
        """An empty cache for ``batch_size`` rows of up to ``capacity`` positions, on the model's device and dtype."""
        config = self.config  # type: ignore[attr-defined]
        heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        param = next(self.parameters())  # type: ignore[attr-defined]
        return KVCache(config.num_hidden_layers, batch_size, heads, head_dim, capacity, param.dtype, param.device)

    def decoding_step(self, cache: KVCache) -> Callable[..., torch.Tensor] | None:
        """A faster way to decode one token per sequence, or None (the default) to call the forward pass.

        When a model returns a callable here, ``generate`` calls ``step(input_ids (B, 1), attention_mask,
        position_ids)`` for every token after the prompt instead of ``forward``; it must write the new keys and
        values into ``cache``, advance it by one, and return the next-token logits ``(B, V)``, equal to what
        ``forward`` gives. ``attention_mask`` is None or a boolean ``(B, 1, 1, past + 1)`` padding mask,
        ``position_ids`` None (positions follow the cache) or ``(B, 1)``.
        """
        return None

    def _forward_for_generation(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                                position_ids: torch.Tensor | None, cache: KVCache) -> torch.Tensor:
        """Logits of the last position, ``(B, V)`` in float32, for the next token."""
        out = self(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,  # type: ignore[operator]
                   past_key_values=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].float()

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = 50,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        eos_token_id: int | Sequence[int] | None = None,
        pad_token_id: int | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        streamer: Any = None,
    ) -> torch.Tensor:
        """Continue each prompt by up to ``max_new_tokens`` tokens; returns ``(B, prompt + new)`` token ids.

        Batched prompts must be left-padded (``padding_side="left"``) with their ``attention_mask``. Greedy unless
        ``do_sample=True``; then ``temperature``, ``top_k`` (0/None: off; default 50 as in transformers) and
        ``top_p`` shape the distribution, and ``seed`` or ``generator`` make the draw reproducible.
        ``repetition_penalty`` applies in both modes. ``eos_token_id`` (an id or a list; default: the config's;
        ``[]`` never stops early) ends a row, which is then filled with ``pad_token_id`` (default: the config's, else
        the first EOS id). ``streamer`` gets ``put(ids)`` / ``end()`` calls (:class:`TextIteratorStreamer`).
        """
        with torch.inference_mode():
            return self._generate(input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k, top_p,
                                  repetition_penalty, eos_token_id, pad_token_id, seed, generator, streamer)

    def _generate(self, input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k, top_p,
                  repetition_penalty, eos_token_id, pad_token_id, seed, generator, streamer) -> torch.Tensor:
        config = self.config  # type: ignore[attr-defined]
        _check_options(max_new_tokens, temperature, top_k, top_p, repetition_penalty)
        if (not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.long, torch.int)
                or input_ids.dim() not in (1, 2)):
            raise ValueError(f"input_ids must be a (batch, length) tensor of token ids, got "
                             f"{type(input_ids).__name__}{tuple(getattr(input_ids, 'shape', ()))}; "
                             f"tokenize with return_tensors='pt'")
        if input_ids.dim() == 1:
            input_ids = input_ids[None]
        if input_ids.shape[1] == 0:
            raise ValueError("input_ids is empty; generate needs a prompt of at least one token (e.g. the BOS token)")
        device = self.device  # type: ignore[attr-defined]
        input_ids = input_ids.to(device=device, dtype=torch.long)
        batch, prompt_len = input_ids.shape

        eos = _token_list(config.eos_token_id if eos_token_id is None else eos_token_id)
        if pad_token_id is None:
            pad_token_id = config.pad_token_id if config.pad_token_id is not None else (eos[0] if eos else None)
        if attention_mask is None and pad_token_id is not None and pad_token_id not in eos:
            # transformers infers the mask from pad tokens when they cannot be confused with EOS
            inferred = input_ids.ne(pad_token_id)
            attention_mask = inferred.long() if not bool(inferred.all()) else None
        if attention_mask is not None:
            attention_mask = attention_mask.to(device)
            if attention_mask.dim() == 1:
                attention_mask = attention_mask[None]
            if attention_mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has "
                                 f"{tuple(input_ids.shape)}; pass the mask the tokenizer returned with the ids")
            if bool(attention_mask.all()):
                attention_mask = None
            elif not bool(attention_mask[:, -1].all()):
                logger.warning("a prompt is right-padded (its attention_mask ends in 0); generation continues after "
                               "the padding, which gives wrong text: tokenize with padding_side='left'")

        if generator is None and seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
        eos_ids = torch.tensor(eos, dtype=torch.long, device=device) if eos else None
        pad = torch.tensor(pad_token_id if pad_token_id is not None else 0, dtype=torch.long, device=device)  # for EOS

        total = prompt_len + max_new_tokens
        limit = getattr(config, "max_position_embeddings", None)
        if limit is not None and total > limit:
            raise ValueError(f"prompt ({prompt_len} tokens) + max_new_tokens ({max_new_tokens}) = {total} exceeds the "
                             f"{limit} positions the model has; shorten the prompt or ask for fewer tokens")
        sequences = torch.empty(batch, total, dtype=torch.long, device=device)
        sequences[:, :prompt_len] = input_ids
        if streamer is not None:
            streamer.put(input_ids.cpu())
        if max_new_tokens == 0:
            if streamer is not None:
                streamer.end()
            return sequences

        # Masks are built once: the prompt's (B, 1, L, L) causal-and-padding mask, and one (B, 1, 1, total) row
        # whose first `cur` columns are the decoding mask at each step. Without padding there is no mask at all.
        if attention_mask is not None:
            key_mask = torch.ones(batch, 1, 1, total, dtype=torch.bool, device=device)
            key_mask[:, 0, 0, :prompt_len] = attention_mask.bool()
            prefill_mask, _ = causal_attention_mask(attention_mask, prompt_len, 0, device)
            positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # (B, L)
        else:
            key_mask = prefill_mask = positions = None

        cache = self.new_kv_cache(batch, total)
        unfinished = torch.ones(batch, dtype=torch.bool, device=device)
        cur = prompt_len
        try:
            logits = self._forward_for_generation(input_ids, prefill_mask, positions, cache)  # (B, V)
            step: Callable[..., torch.Tensor] | None = None  # made when the first token after the prompt needs it
            next_positions = positions[:, -1:] if positions is not None else None
            while True:
                scores = logits
                if repetition_penalty != 1.0:
                    scores = apply_repetition_penalty(scores, sequences[:, :cur], repetition_penalty)
                if do_sample:
                    if temperature != 1.0:
                        scores = scores / temperature
                    if top_k:
                        scores = apply_top_k(scores, top_k)
                    if top_p < 1.0:
                        scores = apply_top_p(scores, top_p)
                    next_tokens = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
                else:
                    next_tokens = scores.argmax(dim=-1)
                if eos_ids is not None:
                    next_tokens = torch.where(unfinished, next_tokens, pad)
                    unfinished &= ~torch.isin(next_tokens, eos_ids)
                sequences[:, cur] = next_tokens
                cur += 1
                if streamer is not None:
                    streamer.put(next_tokens.cpu())
                if cur == total or (eos_ids is not None and not bool(unfinished.any())):
                    break
                if next_positions is not None:
                    next_positions = next_positions + 1
                step_mask = key_mask[..., :cur] if key_mask is not None else None
                if step is None:
                    step = self.decoding_step(cache) or functools.partial(self._forward_for_generation, cache=cache)
                logits = step(sequences[:, cur - 1 : cur], step_mask, next_positions).float()  # (B, V)
        finally:
            if streamer is not None:
                streamer.end()  # also on error, so a consumer iterating the streamer is never left waiting
        return sequences[:, :cur]


# --- streamers -----------------------------------------------------------------------------------------------------------


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class BaseStreamer(ABC):
    """What ``generate`` calls: ``put(ids)`` with the prompt, then with each step's new ids; ``end()`` at the end."""

    @abstractmethod
    def put(self, value: torch.Tensor) -> None:
        """Receive token ids: first the prompt, then each step's new tokens."""

    @abstractmethod
    def end(self) -> None:
        """Generation finished: flush what is held back."""


class TextStreamer(BaseStreamer):
    """Decodes tokens as they arrive and hands finished text to ``on_text(text, stream_end)``.

    Text is released up to the last space (a word may still change with the next token), at a newline, or after a
    CJK character, as transformers' TextStreamer does; text ending in an incomplete UTF-8 sequence (an emoji split
    over byte-level tokens decodes to U+FFFD) is held back until the character is complete. The concatenation of all
    chunks equals ``tokenizer.decode`` of the generated ids. Without ``on_text`` the text goes to stdout. Batch 1 only.
    """

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, on_text: Callable[[str, bool], None] | None = None,
                 **decode_kwargs: Any) -> None:
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self._on_text = on_text
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1 and value.shape[0] > 1:
            raise ValueError("TextStreamer streams one sequence; generate with a batch of 1")
        if value.dim() > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.next_tokens_are_prompt = False
        self.token_cache.extend(int(t) for t in value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):
            printable = text[self.print_len:]
            self.token_cache = []
            self.print_len = 0
        elif text.endswith("\ufffd"):
            return  # an incomplete character: wait for its remaining bytes
        elif text and _is_cjk(ord(text[-1])):
            printable = text[self.print_len:]
            self.print_len += len(printable)
        else:
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        if printable:
            self.on_finalized_text(printable)

    def end(self) -> None:
        printable = ""
        if self.token_cache:
            printable = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)[self.print_len:]
        self.token_cache = []
        self.print_len = 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if self._on_text is not None:
            self._on_text(text, stream_end)
        else:
            sys.stdout.write(text + ("\n" if stream_end else ""))
            sys.stdout.flush()


class TextIteratorStreamer(TextStreamer):
    """A streamer to iterate over in one thread while ``generate`` runs in another: yields text chunks as they are
    decoded, and stops when generation ends. ``timeout`` (seconds) bounds each wait for the next chunk."""

    _END = object()

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, timeout: float | None = None,
                 **decode_kwargs: Any) -> None:
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: queue.Queue[Any] = queue.Queue()
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.text_queue.put(text)
        if stream_end:
            self.text_queue.put(self._END)

    def __iter__(self) -> TextIteratorStreamer:
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self._END:
            raise StopIteration
        return value


def stream_generate(model: Any, tokenizer: Any, input_ids: torch.Tensor, skip_prompt: bool = True,
                    timeout: float | None = None, **generate_kwargs: Any) -> Iterator[str]:
    """Yield the text of ``model.generate(input_ids, **generate_kwargs)`` as it is produced.

    Generation runs in a background thread feeding a :class:`TextIteratorStreamer`; an error raised there is
    re-raised here once the stream ends. The prompt is not yielded unless ``skip_prompt=False``.
    """
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=skip_prompt, timeout=timeout)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            model.generate(input_ids, streamer=streamer, **generate_kwargs)
        except BaseException as exc:  # handed to the consumer thread below
            failure.append(exc)
            streamer.text_queue.put(TextIteratorStreamer._END)

    thread = threading.Thread(target=run, name="zoo-generate", daemon=True)
    thread.start()
    try:
        yield from streamer
    finally:
        thread.join()
    if failure:
        raise failure[0]
