"""A causal LM as one graph with its key/value cache as inputs and outputs, for a generation loop outside Python.

zoo's models keep the cache in a :class:`~zoo.generation.KVCache`: one preallocated buffer per layer, written in
place, with a Python int for the cached length. That suits eager decoding and cannot be a graph input. Here the
cache is the graph's own tensors, in the layout optimum's ONNX decoders use (``past_key_values.{i}.key`` /
``.value`` in, ``present.{i}.key`` / ``.value`` out, each ``(batch, heads, past_sequence, head_dim)``): an
:class:`ExportCache` hands the model ``cat(past, new)`` as every layer's keys and values and keeps them as the
outputs. The model code runs unchanged (it only calls ``cache.update`` and reads ``cache.length``), so the graph
is the model's forward pass, traced once with ``past_sequence`` a dynamic axis. One graph serves the whole loop:
the first step (the prompt) passes empty pasts (``past_sequence`` = 0), every later step the last presents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.errors import ExportError
from zoo.generation import KVCache


@dataclass(frozen=True)
class CacheLayout:
    """How many key/value pairs the graph carries and their shape ``(batch, num_heads, past, head_dim)``."""

    num_layers: int
    num_heads: int
    head_dim: int

    def input_names(self) -> list[str]:
        return [f"past_key_values.{i}.{kv}" for i in range(self.num_layers) for kv in ("key", "value")]

    def output_names(self) -> list[str]:
        return [f"present.{i}.{kv}" for i in range(self.num_layers) for kv in ("key", "value")]

    def empty(self, batch: int, past: int, dtype: torch.dtype) -> list[torch.Tensor]:
        """Example past tensors, flat in input order."""
        shape = (batch, self.num_heads, past, self.head_dim)
        return [torch.zeros(shape, dtype=dtype) for _ in range(2 * self.num_layers)]


def cache_layout(model: Any) -> CacheLayout | None:
    """The cache layout of a causal LM of zoo's generation protocol (``new_kv_cache``), or None without one."""
    make = getattr(model, "new_kv_cache", None)
    if make is None:
        return None
    probe = make(1, 1)
    if not isinstance(probe, KVCache) or not probe.keys:
        return None
    _, heads, _, head_dim = probe.keys[0].shape
    return CacheLayout(len(probe.keys), int(heads), int(head_dim))


class ExportCache(KVCache):
    """A KVCache over given past tensors: ``update`` concatenates (a graph op) instead of writing a buffer in place.

    ``length`` is the past's length, a symbolic size while tracing; ``advance`` has nothing to do, since the graph
    returns the presents and the caller feeds them back.
    """

    def __init__(self, past: tuple[torch.Tensor, ...]) -> None:  # no buffers: super().__init__ is not called
        self.keys = list(past[0::2])
        self.values = list(past[1::2])
        self.length = past[0].shape[2]
        self.present: list[torch.Tensor | None] = [None] * len(past)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys = torch.cat([self.keys[layer], k], dim=2)  # (B, heads, past + T, head_dim)
        values = torch.cat([self.values[layer], v], dim=2)
        self.present[2 * layer], self.present[2 * layer + 1] = keys, values
        return keys, values

    def advance(self, n: int) -> None:
        pass

    def reserve(self, needed: int) -> None:
        pass

    def reorder(self, index: torch.Tensor) -> None:
        raise ExportError("an exported cache is not reordered inside the graph; reorder the present tensors "
                          "between steps (beam search) in the calling app")


class CausalLMWithCache(nn.Module):
    """``(input_ids, attention_mask, position_ids, *past) -> (logits, *present)`` over a zoo causal LM.

    ``attention_mask`` covers past and new positions ``(batch, past_sequence + sequence)``; ``position_ids``
    ``(batch, sequence)`` are what ``generate`` uses: ``cumsum(attention_mask) - 1`` (0 at padding) for the
    prompt, then one more than the last position at each step. ``logits`` are ``(batch, sequence, vocab)``.
    """

    def __init__(self, model: nn.Module, layout: CacheLayout) -> None:
        super().__init__()
        self.model = model
        self.layout = layout

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # one flat *inputs, as every exported wrapper takes them (zoo.export.graph declares their axes in order)
        input_ids, attention_mask, position_ids, *past = inputs
        cache = ExportCache(tuple(past))
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True, return_dict=True)
        missing = [i for i, t in enumerate(cache.present) if t is None]
        if missing:
            raise ExportError(f"{type(self.model).__name__} did not update cache layer {missing[0] // 2} in its "
                              f"forward pass; its attention layers must call cache.update(layer, k, v) for every "
                              f"layer new_kv_cache declares ({self.layout.num_layers})")
        return (out.logits, *cache.present)  # type: ignore[arg-type]


def prompt_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """The positions ``generate`` gives a (left-)padded prompt: counted over real tokens, 0 at padding."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # (B, T)
