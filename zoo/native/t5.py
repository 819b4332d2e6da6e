"""The native decoding step of T5-style decoders (``decode_t5.c``): T5's RMS norm, self-attention with a relative
position bias over the key/value cache, cross-attention over the encoder's keys/values, a plain or gated MLP, the
scaled output embedding of tied checkpoints; float32 weights, in one parallel region.

Like :class:`zoo.native.llama.RMSNativeDecoder`, a :class:`T5NativeDecoder` is built once per ``generate`` call over
the model's own tensors (read in place, no copy), a :class:`zoo.generation.KVCache` for the self-attention and the
cross-attention keys/values the first decoder pass computed. Each call runs every layer for one new token per row,
writes the new keys and values into the cache at its current length and returns the next-token logits; the caller
advances the cache. The position bias comes as a table per layer, computed by the caller with the model's own
bucketing and bias embedding, so the kernel only adds it.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from zoo.native import ACTIVATIONS, CacheBoundKernel, open_library

if TYPE_CHECKING:
    import torch

    from zoo.generation import KVCache

__all__ = ["MAX_ROWS", "T5LayerWeights", "T5NativeDecoder", "available", "status"]

ABI_VERSION = 1
#: Rows a step takes (the row products keep one accumulator per row in registers).
MAX_ROWS = 8

_POINTERS = ("self_norm", "q_w", "k_w", "v_w", "o_w", "cross_norm", "cq_w", "co_w", "ff_norm", "wi_w", "wi1_w", "wo_w",
             "bias", "keys", "values", "cross_keys", "cross_values")


class _Layer(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in _POINTERS]


class _Model(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in ("n_layer", "hidden", "heads", "d_kv", "inner", "vocab",
                                                     "activation", "gated")] + [
        ("eps", ctypes.c_float), ("out_scale", ctypes.c_float), ("capacity", ctypes.c_int64),
        ("enc_len", ctypes.c_int64), ("embed_rows", ctypes.c_int64), ("embed", ctypes.c_void_p),
        ("norm", ctypes.c_void_p), ("head_w", ctypes.c_void_p), ("layers", ctypes.POINTER(_Layer))]


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Any, str]:
    import torch  # noqa: F401  (first: the library's OpenMP symbols must resolve to torch's libgomp)

    library, why = open_library("_decode_t5", "decode_t5.c", "zoo_t5_abi_version", ABI_VERSION)
    if library is not None:
        library.zoo_t5_decode_step.argtypes = [ctypes.POINTER(_Model), ctypes.c_void_p, ctypes.c_int, ctypes.c_int64,
                                               ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int]
        library.zoo_t5_decode_step.restype = ctypes.c_int
    return library, why


def available() -> bool:
    """Whether the T5 kernel is built, loadable and not turned off (``ZOO_NATIVE=0``)."""
    return _load()[0] is not None


def status() -> str:
    """'in use', or why the kernel is not used."""
    library, why = _load()
    return "in use" if library is not None else why


@dataclass(frozen=True)
class T5LayerWeights:
    """One decoder layer's float32 tensors as the kernel reads them (nn.Linear's ``(out, in)``), contiguous, on the
    CPU; ``wi1_w`` None for a non-gated MLP (``wi_w`` is then ``wi``, else ``wi_0``)."""

    self_norm: torch.Tensor
    q_w: torch.Tensor
    k_w: torch.Tensor
    v_w: torch.Tensor
    o_w: torch.Tensor
    cross_norm: torch.Tensor
    cq_w: torch.Tensor
    co_w: torch.Tensor
    ff_norm: torch.Tensor
    wi_w: torch.Tensor
    wi1_w: torch.Tensor | None
    wo_w: torch.Tensor


class T5NativeDecoder(CacheBoundKernel):
    """One decoding step of a T5-style decoder through ``zoo_t5_decode_step`` (decode_t5.c).

    ``bias(capacity)`` returns the position-bias tables, one ``(heads, capacity)`` float32 tensor per layer (the
    same one for every layer where the model shares layer 0's), reversed: entry ``[h, capacity - 1 - d]`` is the
    bias of a key ``d`` positions before the query. It is called again when the cache grows. The cache's ``cross``
    list holds the layers' ``(keys, values)``, each ``(rows, heads, S_enc, d_kv)``, filled by the first decoder
    pass; it is read again at every call (a reorder of the cache's rows replaces the tensors). Raises ValueError when a tensor is not what the kernel reads, so the
    caller can fall back to PyTorch.
    """

    def __init__(self, *, embed: torch.Tensor, layers: Sequence[T5LayerWeights], norm: torch.Tensor,
                 head_weight: torch.Tensor, heads: int, d_kv: int, eps: float, out_scale: float, activation: str,
                 bias: Any, cache: Any) -> None:
        import torch

        library, why = _load()
        if library is None:
            raise RuntimeError(f"the native kernels are not available: {why}")
        cross = getattr(cache, "cross", None) or []
        problem = self.misfit(embed, layers, norm, head_weight, heads, d_kv, activation, cache, cross)
        if problem:
            raise ValueError(f"the native decoding step cannot run this model: {problem}")
        self._library, self._torch, self.cache = library, torch, cache
        self.heads, self.d_kv, self.vocab = heads, d_kv, head_weight.shape[0]
        self._bias_fn = bias
        self._keep = [embed, norm, head_weight, *(t for layer in layers for t in self._tensors(layer))]
        self._layers = (_Layer * len(layers))()
        for struct, layer in zip(self._layers, layers):
            for f in fields(T5LayerWeights):
                t = getattr(layer, f.name)
                setattr(struct, f.name, t.data_ptr() if t is not None else None)
        self._model = _Model(
            n_layer=len(layers), hidden=embed.shape[1], heads=heads, d_kv=d_kv, inner=layers[0].wi_w.shape[0],
            vocab=self.vocab, activation=ACTIVATIONS[activation], gated=int(layers[0].wi1_w is not None),
            eps=float(eps), out_scale=float(out_scale), enc_len=cross[0][0].shape[2], embed_rows=embed.shape[0],
            embed=embed.data_ptr(), norm=norm.data_ptr(), head_w=head_weight.data_ptr(), layers=self._layers)
        self._cache_state: tuple = ()
        self._bias_capacity = -1
        self._bias: list[torch.Tensor] = []
        self._cross_state: tuple = ()
        self._bind()

    @staticmethod
    def _tensors(layer: T5LayerWeights) -> list[torch.Tensor]:
        return [t for f in fields(T5LayerWeights) if (t := getattr(layer, f.name)) is not None]

    @classmethod
    def misfit(cls, embed: torch.Tensor, layers: Sequence[T5LayerWeights], norm: torch.Tensor,
               head_weight: torch.Tensor, heads: int, d_kv: int, activation: str, cache: KVCache,
               cross: list[tuple[torch.Tensor, torch.Tensor]]) -> str:
        """Why the kernel cannot run on these tensors (empty if it can). It reads raw memory, so every dtype,
        layout and shape is checked here, once, rather than trusted."""
        import torch

        if activation not in ACTIVATIONS:
            return f"activation {activation!r} is not one it computes ({', '.join(sorted(ACTIVATIONS))})"
        if embed.dtype != torch.float32:
            return f"it reads float32 weights, got {embed.dtype}"
        if not layers:
            return "the model has no layers"
        gated = layers[0].wi1_w is not None
        hidden, inner, vocab, qd = embed.shape[1], layers[0].wi_w.shape[0], head_weight.shape[0], heads * d_kv
        expected: dict[str, tuple[torch.Tensor | None, tuple[int, ...]]] = {
            "embed": (embed, (embed.shape[0], hidden)), "norm": (norm, (hidden,)), "head": (head_weight, (vocab, hidden))}
        shapes = {"self_norm": (hidden,), "q_w": (qd, hidden), "k_w": (qd, hidden), "v_w": (qd, hidden),
                  "o_w": (hidden, qd), "cross_norm": (hidden,), "cq_w": (qd, hidden), "co_w": (hidden, qd),
                  "ff_norm": (hidden,), "wi_w": (inner, hidden), "wi1_w": (inner, hidden), "wo_w": (hidden, inner)}
        for i, layer in enumerate(layers):
            if (layer.wi1_w is not None) != gated:
                return "its layers mix gated and plain MLPs"
            for name, shape in shapes.items():
                expected[f"layers[{i}].{name}"] = (getattr(layer, name), shape)
        for name, (t, shape) in expected.items():
            if t is None:
                continue
            if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
                return (f"{name} is {t.dtype} on {t.device}{'' if t.is_contiguous() else ' (not contiguous)'}; "
                        f"it reads contiguous float32 CPU tensors")
            if tuple(t.shape) != shape:
                return f"{name} has shape {tuple(t.shape)}, expected {shape}"
        if len(cache.keys) != len(layers) or len(cross) != len(layers):
            return f"the cache has {len(cache.keys)} layers and {len(cross)} cross-attention ones, the model {len(layers)}"
        rows = cache.keys[0].shape[0]
        if rows > MAX_ROWS:
            return f"{rows} rows, more than the {MAX_ROWS} a step takes"
        for t in cache.keys + cache.values:
            if tuple(t.shape) != (rows, heads, cache.capacity, d_kv) or t.dtype != torch.float32:
                return f"a cache layer is {t.dtype} {tuple(t.shape)}, expected float32 ({rows}, {heads}, capacity, {d_kv})"
        return cls._cross_misfit(cross, rows, heads, d_kv)

    @staticmethod
    def _cross_misfit(cross: list[tuple[torch.Tensor, torch.Tensor]], rows: int, heads: int, d_kv: int) -> str:
        import torch

        length = cross[0][0].shape[2] if cross else 0
        for k, v in cross:
            for t in (k, v):
                if tuple(t.shape) != (rows, heads, length, d_kv) or t.dtype != torch.float32 or t.device.type != "cpu":
                    return (f"cross-attention keys/values are {t.dtype} {tuple(t.shape)} on {t.device}, expected "
                            f"float32 ({rows}, {heads}, {length}, {d_kv}) on the CPU")
        return ""

    def _bind(self) -> None:
        """Point the kernel at the cache's buffers, the cross-attention keys/values and the bias tables (again,
        where any of them changed)."""
        self._bind_cache()
        cache = self.cache
        if cache.capacity != self._bias_capacity:
            self._bias = [b.contiguous() for b in self._bias_fn(cache.capacity)]
            for struct, b in zip(self._layers, self._bias):
                struct.bias = b.data_ptr()
            self._bias_capacity = cache.capacity
        state = tuple(t.data_ptr() for pair in cache.cross for t in pair)
        if state != self._cross_state:
            # the first decoder pass leaves head-split views of its projections: the kernel reads contiguous rows
            cache.cross = [(k.contiguous(), v.contiguous()) for k, v in cache.cross]
            problem = self._cross_misfit(cache.cross, cache.keys[0].shape[0], self.heads, self.d_kv)
            if len(cache.cross) != len(self._layers) or problem:
                raise ValueError(problem or f"the cache has {len(cache.cross)} cross-attention layers, the model "
                                 f"{len(self._layers)}")
            for struct, (k, v) in zip(self._layers, cache.cross):
                struct.cross_keys, struct.cross_values = k.data_ptr(), v.data_ptr()
            self._model.enc_len = cache.cross[0][0].shape[2]
            self._cross_state = tuple(t.data_ptr() for pair in cache.cross for t in pair)

    def __call__(self, input_ids: torch.Tensor, encoder_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids`` (B,) -> logits (B, vocab) float32; ``encoder_mask`` None or a boolean ``(B, S_enc)``
        tensor (True = attend) over the encoder positions."""
        torch = self._torch
        cache = self.cache
        batch, past = input_ids.shape[0], cache.length
        rows = cache.keys[0].shape[0]
        if input_ids.dim() != 1 or batch != rows:
            raise ValueError(f"expected input_ids ({rows},), got {tuple(input_ids.shape)}")
        cache.reserve(past + 1)  # a step outside generate may run past the capacity it was made with
        self._bind()
        mask_ptr, mask_stride = None, 0
        if encoder_mask is not None:
            length = self._model.enc_len
            if (encoder_mask.dtype != torch.bool or tuple(encoder_mask.shape) != (batch, length)
                    or not encoder_mask.is_contiguous()):
                raise ValueError(f"encoder_mask must be a contiguous boolean ({batch}, {length}) tensor, got "
                                 f"{encoder_mask.dtype} {tuple(encoder_mask.shape)}")
            mask_ptr, mask_stride = encoder_mask.data_ptr(), length
        ids = input_ids.to(torch.int64).contiguous()
        logits = torch.empty(batch, self.vocab)
        code = self._library.zoo_t5_decode_step(ctypes.byref(self._model), ids.data_ptr(), batch, past, mask_ptr,
                                                mask_stride, logits.data_ptr(), torch.get_num_threads())
        if code == -3:
            raise IndexError(f"a token id is out of range: {ids.tolist()} (the vocabulary has "
                             f"{self._model.embed_rows}); check the tokenizer matches the model")
        if code == -4:
            raise ValueError(f"{batch} rows, more than the {MAX_ROWS} a native step takes")
        if code != 0:
            raise MemoryError(f"the native decoding step failed (code {code}): out of memory for its scratch buffers")
        return logits
