"""The key/value cache of generation, and the attention mask a cached forward pass needs.

A causal LM that generates keeps the keys and values of every position it has seen, so that each new token costs
one position's worth of attention work (transformers' cache_utils.py ``DynamicCache`` plays this part there).
Here the cache is one preallocated buffer per layer, written in place: ``generate`` knows the final length up front,
so no step ever copies the past. Beam search picks, at every step, which rows (beams) live on: :meth:`KVCache.reorder`
gathers them in place, over the cached positions only.

:func:`causal_attention_mask` turns a padding mask and the cache's length into the arguments of
``torch.nn.functional.scaled_dot_product_attention``, building no tensor where SDPA's own causal flag suffices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch

from zoo.model_api import warn_once
from zoo.modeling import is_exporting

logger = logging.getLogger(__name__)

__all__ = ["KVCache", "causal_attention_mask", "forward_cache"]


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

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0] if self.keys else 0

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
        """Keep the batch rows ``index`` (in that order), as beam search does after every step.

        With as many indices as rows, the rows are gathered in place over the cached positions only, so the buffers
        (and a native decoding step bound to their memory) stay where they are. Another count (rows duplicated for
        beams or extra return sequences, or dropped) makes new buffers, copies of the selected rows.
        """
        index = index.to(device=self.keys[0].device if self.keys else None, dtype=torch.long)
        n = self.length
        for store in (self.keys, self.values):
            for layer, buffer in enumerate(store):
                if index.shape[0] == buffer.shape[0]:
                    buffer[:, :, :n] = buffer[:, :, :n].index_select(0, index)
                else:
                    store[layer] = buffer.index_select(0, index)


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
    # an exported graph (zoo.export) must serve padded inputs too: it always takes the padded path
    padded = attention_mask is not None and (is_exporting() or not bool(attention_mask.all()))
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


def forward_cache(model: Any, layers: Iterable[Any], past_key_values: Any, use_cache: bool, batch_size: int,
                  length: int, new_cache: Callable[[int, int], KVCache]) -> tuple[KVCache | None, bool]:
    """The cache a decoder's forward pass writes, and whether it returns it: ``past_key_values`` (checked to be a
    :class:`KVCache`), or a new one of ``length`` positions when ``use_cache``, or none.

    Under gradient checkpointing in training (any of ``layers`` checkpointed) there is no cache, with a warning
    when one was asked for: the backward pass replays each layer, which would write the cache twice.
    """
    cache = past_key_values
    if model.training and torch.is_grad_enabled() and any(layer.gradient_checkpointing for layer in layers):
        if use_cache or cache is not None:
            warn_once(logger, "use_cache=True is incompatible with gradient checkpointing (the backward pass "
                              "replays each layer, which would write the cache twice): setting use_cache=False")
        return None, False
    if cache is None and use_cache:
        return new_cache(batch_size, length), use_cache
    if cache is not None and not isinstance(cache, KVCache):
        raise TypeError(f"past_key_values must be the zoo.generation.KVCache a previous call returned, got "
                        f"{type(cache).__name__}")
    return cache, use_cache
