"""The native decoding step of Llama-style decoders (``decode_llama.c``): RMSNorm, rotary positions, grouped-query
attention with an optional sliding window, a gated MLP, float32 or bfloat16 weights, in one parallel region.

Like :class:`zoo.native.NativeDecoder` for GPT-2, a :class:`RMSNativeDecoder` is built once per ``generate`` call
over the model's own tensors (read in place, no copy) and a :class:`zoo.generation.KVCache`; each call runs every
layer for one new token per row, writes the new keys and values into the cache at its current length and returns
the next-token logits; the caller advances the cache. The rotary tables of the step's positions come from the
model's own rotary module (every scaling variant is computed there, in PyTorch), so the kernel only applies them.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from zoo.native import ACTIVATIONS, CacheBoundKernel, open_library, step_mask

if TYPE_CHECKING:
    import torch

    from zoo.generation import KVCache

__all__ = ["MAX_ROWS", "RMSLayerWeights", "RMSNativeDecoder", "available", "bf16_dot", "status"]

ABI_VERSION = 1
#: Rows a step takes (decode_llama.c keeps one accumulator per row in registers).
MAX_ROWS = 8

_POINTERS = ("attn_norm", "q_w", "q_b", "k_w", "k_b", "v_w", "v_b", "q_norm", "k_norm", "o_w", "o_b",
             "mlp_norm", "gate_w", "gate_b", "up_w", "up_b", "down_w", "down_b", "keys", "values")


class _Layer(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in _POINTERS] + [("window", ctypes.c_int64)]


class _Model(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in ("n_layer", "hidden", "heads", "kv_heads", "head_dim", "inner",
                                                     "vocab", "rotary_dim", "activation", "bf16")] + [
        ("eps", ctypes.c_float), ("scale", ctypes.c_float), ("capacity", ctypes.c_int64),
        ("embed_rows", ctypes.c_int64), ("embed", ctypes.c_void_p), ("norm", ctypes.c_void_p),
        ("head_w", ctypes.c_void_p), ("layers", ctypes.POINTER(_Layer))]


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Any, str]:
    import torch  # noqa: F401  (first: the library's OpenMP symbols must resolve to torch's libgomp)

    library, why = open_library("_decode_llama", "decode_llama.c", "zoo_rms_abi_version", ABI_VERSION)
    if library is not None:
        library.zoo_rms_decode_step.argtypes = [ctypes.POINTER(_Model), ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p,
                                                ctypes.c_int64, ctypes.c_void_p, ctypes.c_int]
        library.zoo_rms_decode_step.restype = ctypes.c_int
        library.zoo_rms_bf16_dot.restype = ctypes.c_int
    return library, why


def available() -> bool:
    """Whether the Llama-style kernel is built, loadable and not turned off (``ZOO_NATIVE=0``)."""
    return _load()[0] is not None


def status() -> str:
    """'in use' (and how it multiplies bf16 weights), or why the kernel is not used."""
    library, why = _load()
    if library is None:
        return why
    return "in use (bf16 products on AVX512-BF16)" if library.zoo_rms_bf16_dot() else "in use (bf16 widened to float32)"


def bf16_dot() -> bool:
    """Whether bf16 products run on the processor's bf16 dot-product instructions (else weights are widened)."""
    library = _load()[0]
    return bool(library is not None and library.zoo_rms_bf16_dot())


@dataclass(frozen=True)
class RMSLayerWeights:
    """One decoder layer's tensors as the kernel reads them: nn.Linear weights ``(out, in)``, all of the model's
    dtype, contiguous, on the CPU; biases and the q/k norms None where the family has none."""

    attn_norm: torch.Tensor
    q_w: torch.Tensor
    q_b: torch.Tensor | None
    k_w: torch.Tensor
    k_b: torch.Tensor | None
    v_w: torch.Tensor
    v_b: torch.Tensor | None
    q_norm: torch.Tensor | None
    k_norm: torch.Tensor | None
    o_w: torch.Tensor
    o_b: torch.Tensor | None
    mlp_norm: torch.Tensor
    gate_w: torch.Tensor
    gate_b: torch.Tensor | None
    up_w: torch.Tensor
    up_b: torch.Tensor | None
    down_w: torch.Tensor
    down_b: torch.Tensor | None
    window: int = 0  # sliding window (keys a query sees, itself included); 0: all


class RMSNativeDecoder(CacheBoundKernel):
    """One decoding step of a Llama-style decoder through ``zoo_rms_decode_step`` (decode_llama.c).

    Raises ValueError when a tensor is not what the kernel reads (a dtype other than float32/bfloat16, mixed
    dtypes, a GPU tensor, a layout or shape it does not index by), so the caller can fall back to PyTorch.
    """

    def __init__(self, *, embed: torch.Tensor, layers: Sequence[RMSLayerWeights], norm: torch.Tensor,
                 head_weight: torch.Tensor, heads: int, kv_heads: int, head_dim: int, rotary_dim: int, eps: float,
                 scale: float, activation: str, cache: KVCache) -> None:
        import torch

        library, why = _load()
        if library is None:
            raise RuntimeError(f"the native kernels are not available: {why}")
        problem = self.misfit(embed, layers, norm, head_weight, heads, kv_heads, head_dim, rotary_dim, activation,
                              cache)
        if problem:
            raise ValueError(f"the native decoding step cannot run this model: {problem}")
        self._library, self._torch, self.cache = library, torch, cache
        self.dtype = embed.dtype
        self.rotary_dim = rotary_dim
        self.vocab = head_weight.shape[0]
        self._keep = [embed, norm, head_weight, *(t for layer in layers for t in self._tensors(layer))]
        self._layers = (_Layer * len(layers))()
        for struct, layer in zip(self._layers, layers):
            for f in fields(RMSLayerWeights):
                if f.name != "window":
                    t = getattr(layer, f.name)
                    setattr(struct, f.name, t.data_ptr() if t is not None else None)
            struct.window = int(layer.window or 0)
        self._model = _Model(
            n_layer=len(layers), hidden=embed.shape[1], heads=heads, kv_heads=kv_heads, head_dim=head_dim,
            inner=layers[0].gate_w.shape[0], vocab=self.vocab, rotary_dim=rotary_dim,
            activation=ACTIVATIONS[activation], bf16=int(embed.dtype == torch.bfloat16), eps=float(eps),
            scale=float(scale), embed_rows=embed.shape[0], embed=embed.data_ptr(), norm=norm.data_ptr(),
            head_w=head_weight.data_ptr(), layers=self._layers)
        self._cache_state: tuple = ()
        self._bind_cache()

    @staticmethod
    def _tensors(layer: RMSLayerWeights) -> list[torch.Tensor]:
        return [t for f in fields(RMSLayerWeights) if f.name != "window" and (t := getattr(layer, f.name)) is not None]

    @classmethod
    def misfit(cls, embed: torch.Tensor, layers: Sequence[RMSLayerWeights], norm: torch.Tensor,
               head_weight: torch.Tensor, heads: int, kv_heads: int, head_dim: int, rotary_dim: int,
               activation: str, cache: KVCache) -> str:
        """Why the kernel cannot run on these tensors (empty if it can). It reads raw memory, so every dtype,
        layout and shape is checked here, once, rather than trusted."""
        import torch

        if activation not in ACTIVATIONS:
            return f"activation {activation!r} is not one it computes ({', '.join(sorted(ACTIVATIONS))})"
        if embed.dtype not in (torch.float32, torch.bfloat16):
            return f"it reads float32 or bfloat16 weights, got {embed.dtype}"
        if not layers:
            return "the model has no layers"
        if heads < 1 or kv_heads < 1 or heads % kv_heads or rotary_dim % 2 or not 0 <= rotary_dim <= head_dim:
            return f"{heads} heads over {kv_heads} key/value heads with rotary dim {rotary_dim} of {head_dim}"
        hidden, inner, vocab = embed.shape[1], layers[0].gate_w.shape[0], head_weight.shape[0]
        q, kv = heads * head_dim, kv_heads * head_dim
        expected: dict[str, tuple[torch.Tensor | None, tuple[int, ...]]] = {
            "embed": (embed, (embed.shape[0], hidden)), "norm": (norm, (hidden,)), "head": (head_weight, (vocab, hidden))}
        shapes = {"attn_norm": (hidden,), "q_w": (q, hidden), "q_b": (q,), "k_w": (kv, hidden), "k_b": (kv,),
                  "v_w": (kv, hidden), "v_b": (kv,), "q_norm": (head_dim,), "k_norm": (head_dim,), "o_w": (hidden, q),
                  "o_b": (hidden,), "mlp_norm": (hidden,), "gate_w": (inner, hidden), "gate_b": (inner,),
                  "up_w": (inner, hidden), "up_b": (inner,), "down_w": (hidden, inner), "down_b": (hidden,)}
        for i, layer in enumerate(layers):
            for name, shape in shapes.items():
                expected[f"layers[{i}].{name}"] = (getattr(layer, name), shape)
        for name, (t, shape) in expected.items():
            if t is None:
                continue
            if t.dtype != embed.dtype or t.device.type != "cpu" or not t.is_contiguous():
                return (f"{name} is {t.dtype} on {t.device}{'' if t.is_contiguous() else ' (not contiguous)'}; "
                        f"it reads contiguous CPU tensors of one dtype ({embed.dtype})")
            if tuple(t.shape) != shape:
                return f"{name} has shape {tuple(t.shape)}, expected {shape}"
        if len(cache.keys) != len(layers) or len(cache.values) != len(layers):
            return f"the cache has {len(cache.keys)} layers, the model {len(layers)}"
        rows = cache.keys[0].shape[0]
        if rows > MAX_ROWS:
            return f"{rows} rows, more than the {MAX_ROWS} a step takes"
        for t in cache.keys + cache.values:
            if tuple(t.shape) != (rows, kv_heads, cache.capacity, head_dim) or t.dtype != embed.dtype:
                return (f"a cache layer is {t.dtype} {tuple(t.shape)}, expected {embed.dtype} (batch, {kv_heads}, "
                        f"capacity, {head_dim})")
        return ""

    def __call__(self, input_ids: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids`` (B,) -> logits (B, vocab) float32; ``cos``/``sin`` (B, rotary_dim): the rotary tables of
        each row's position as the model computes them; ``attention_mask`` None or a boolean ``(B, 1, 1, past + 1)``
        view whose last dimension is contiguous (True = attend)."""
        torch = self._torch
        cache = self.cache
        batch, past = input_ids.shape[0], cache.length
        rows = cache.keys[0].shape[0]
        if input_ids.dim() != 1 or batch != rows or tuple(cos.shape) != (batch, self.rotary_dim) or cos.shape != sin.shape:
            raise ValueError(f"expected input_ids ({rows},) and cos/sin ({rows}, {self.rotary_dim}); got "
                             f"{tuple(input_ids.shape)}, {tuple(cos.shape)} and {tuple(sin.shape)}")
        cache.reserve(past + 1)  # a step outside generate may run past the capacity it was made with
        self._bind_cache()
        ids = input_ids.to(torch.int64).contiguous()
        cos = cos.to(torch.float32).contiguous()
        sin = sin.to(torch.float32).contiguous()
        logits = torch.empty(batch, self.vocab)
        mask_ptr, mask_stride = step_mask(attention_mask, batch, past)
        code = self._library.zoo_rms_decode_step(ctypes.byref(self._model), ids.data_ptr(), cos.data_ptr(),
                                                  sin.data_ptr(), batch, past, mask_ptr, mask_stride, logits.data_ptr(),
                                                  torch.get_num_threads())
        if code == -3:
            raise IndexError(f"a token id is out of range: {ids.tolist()} (the vocabulary has "
                             f"{self._model.embed_rows}); check the tokenizer matches the model")
        if code == -4:
            raise ValueError(f"{batch} rows, more than the {MAX_ROWS} a native step takes")
        if code != 0:
            raise MemoryError(f"the native decoding step failed (code {code}): out of memory for its scratch buffers")
        return logits
