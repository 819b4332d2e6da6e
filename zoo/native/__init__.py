"""Optional native kernels, loaded on first use: a whole decoding step in one parallel region (GPT-2-style blocks
here; Llama-style ones in :mod:`zoo.native.llama`), over float32 or bfloat16 weights read in place (GPT-2's also
over int8 projections with per-row scales, zoo/quantization.py's).

The C source (``decode.c`` beside this file, which says why it exists) is compiled when zoo is installed, as the
extension ``zoo/native/_decode*.so``; a machine without a C compiler installs zoo without it, and everything then
runs on PyTorch alone. The library holds plain C functions, called through :mod:`ctypes` (which releases the GIL
for the call): it uses no Python C API and needs only libc, libm and OpenMP. It is loaded only after torch, so that
its OpenMP symbols bind to torch's own ``libgomp`` and the kernel runs on torch's thread pool.

``ZOO_NATIVE=0`` in the environment turns the kernels off (the PyTorch paths are then used everywhere), for
comparison or debugging. :func:`status` says whether the kernels are in use and, if not, why.

A second, unrelated library sits beside it: ``crc32c.c`` (the CRC-32C checksum of TensorFlow checkpoints, used by
zoo.convert), built the same way as ``_crc32c*.so`` and loaded by :func:`load_crc32c` without torch.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing zoo.native loads no torch
    import torch

    from zoo.generation import KVCache

logger = logging.getLogger(__name__)

__all__ = ["ACTIVATIONS", "STEPWISE_ACTIVATIONS", "WEIGHT_KINDS", "CacheBoundKernel", "DecoderLayerWeights",
           "NativeDecoder", "available", "bf16_dot", "int8_vector", "load_crc32c", "open_library", "status",
           "step_mask"]

ABI_VERSION = 3
CRC32C_ABI_VERSION = 1  # crc32c.c's zoo_crc32c_abi_version

#: Activation names (config.json's) the kernel computes itself, with their codes in decode.c.
ACTIVATIONS = {"gelu_new": 0, "gelu_pytorch_tanh": 0, "gelu_python_tanh": 0, "gelu": 1, "gelu_python": 1,
               "relu": 2, "silu": 3, "swish": 3, "gelu_fast": 4, "quick_gelu": 5}

#: Activations zoo.activations computes as several torch ops, each rounding a bf16 tensor: the kernel rounds after
#: each of them too (common.h's activate_bf16_stepwise), where the others are one torch kernel, rounded once.
STEPWISE_ACTIVATIONS = frozenset({"gelu_python", "gelu_fast", "quick_gelu"})

#: What decode.c reads (common.h's ZOO_WEIGHTS_*), by torch dtype name. float32 and bfloat16: every tensor of a model,
#: and its cache, of one; int8: the projections and the output embedding only (with float32 scales), the rest in one
#: of the float kinds.
WEIGHT_KINDS = {"float32": 0, "bfloat16": 1, "int8": 2}
_FLOAT_KINDS = ("float32", "bfloat16")


class _Layer(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in (
        "ln1_w", "ln1_b", "attn_w", "attn_b", "proj_w", "proj_b", "ln2_w", "ln2_b", "fc_w", "fc_b", "mlp_w", "mlp_b",
        "attn_s", "proj_s", "fc_s", "mlp_s", "keys", "values")] + [("scale", ctypes.c_float)]


class _Model(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in ("n_layer", "hidden", "heads", "inner", "vocab", "activation",
                                                     "weights", "dtype", "upcast", "widen", "stepwise")] + [
        ("eps", ctypes.c_float), ("capacity", ctypes.c_int64), ("wte_rows", ctypes.c_int64),
        ("wpe_rows", ctypes.c_int64)] + [
        (name, ctypes.c_void_p) for name in ("wte", "wpe", "lnf_w", "lnf_b", "head_w", "head_b", "head_s")] + [
        ("layers", ctypes.POINTER(_Layer))]


def _library_path(stem: str = "_decode") -> Path | None:
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _turned_off() -> bool:
    return os.environ.get("ZOO_NATIVE", "1").strip().lower() in ("0", "false", "no", "off")


def open_library(stem: str, source: str, abi_symbol: str, abi_version: int) -> tuple[Any, str]:
    """The compiled ``zoo/native/<stem>*.so`` built from ``source``, as (library or None, why not): absent (no
    compiler at install time), turned off by ``ZOO_NATIVE=0``, unloadable, or from another zoo version (its
    ``abi_symbol()`` is not ``abi_version``)."""
    if _turned_off():
        return None, "turned off by ZOO_NATIVE=0"
    path = _library_path(stem)
    if path is None:
        return None, (f"zoo was installed without its native kernels (no C compiler at install time?); "
                      f"reinstall zoo with gcc or clang available to build zoo/native/{source}")
    try:
        library = ctypes.CDLL(str(path))
        if getattr(library, abi_symbol)() != abi_version:
            return None, f"{path.name} is from another zoo version; reinstall zoo to rebuild it"
    except (OSError, AttributeError) as exc:
        return None, f"{path.name} could not be loaded ({exc}); reinstall zoo to rebuild it"
    logger.debug("native kernel loaded from %s", path)
    return library, ""


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Any, str]:
    """(library or None, why not)."""
    if _turned_off():
        return None, "turned off by ZOO_NATIVE=0"
    import torch  # noqa: F401  (first: the library's OpenMP symbols must resolve to torch's libgomp)

    library, why = open_library("_decode", "decode.c", "zoo_abi_version", ABI_VERSION)
    if library is not None:
        library.zoo_decode_step.argtypes = [ctypes.POINTER(_Model), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                            ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                                            ctypes.c_int]
        library.zoo_decode_step.restype = ctypes.c_int
        library.zoo_bf16_dot.restype = ctypes.c_int
        library.zoo_int8_vector.restype = ctypes.c_int
    return library, why


@functools.lru_cache(maxsize=1)
def load_crc32c() -> tuple[Any, str]:
    """The CRC-32C kernel (``crc32c.c``, built as ``_crc32c*.so`` beside the decoding kernel) as (library or None,
    why not). It uses no OpenMP, so unlike the decoding kernel it loads without torch: zoo.convert reads
    checkpoints with numpy alone."""
    library, why = open_library("_crc32c", "crc32c.c", "zoo_crc32c_abi_version", CRC32C_ABI_VERSION)
    if library is not None:
        library.zoo_crc32c_extend.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
        library.zoo_crc32c_extend.restype = ctypes.c_uint32
        library.zoo_crc32c_hardware.argtypes = []
        library.zoo_crc32c_hardware.restype = ctypes.c_int
        library.zoo_crc32c_force.argtypes = [ctypes.c_int]
        library.zoo_crc32c_force.restype = ctypes.c_int
    return library, why


def available() -> bool:
    """Whether the native kernels are built, loadable and not turned off."""
    return _load()[0] is not None


def status() -> str:
    """'in use', or why the native kernels are not used."""
    library, why = _load()
    return "in use" if library is not None else why


def bf16_dot() -> bool:
    """Whether a bf16 model's output embedding is multiplied on the processor's bf16 dot-product instructions
    (AVX512-BF16's vdpbf16ps); else, and for the Conv1D weights always, bf16 weights are widened to float32."""
    library = _load()[0]
    return bool(library is not None and library.zoo_bf16_dot())


def int8_vector() -> bool:
    """Whether an int8 model's rows are multiplied on AVX-512 (int8 widened with vpmovsxbd/vcvtdq2ps, FMA); else on
    a portable loop (vectorized as the compiler can for the processor)."""
    library = _load()[0]
    return bool(library is not None and library.zoo_int8_vector())


@dataclass(frozen=True)
class DecoderLayerWeights:
    """One pre-norm block's tensors, in the published layouts: Conv1D weights ``(in, out)``; contiguous CPU tensors,
    all float32 or all bfloat16 (the model's dtype).

    Or int8 projections (zoo.quantization.Int8Linear's ``weight_int8`` and ``weight_scale``): the four weights int8
    in the ``(out, in)`` layout (``attn_weight`` ``(3 * hidden, hidden)``, ...), each with its ``(out,)`` scales in
    the ``*_weight_scale`` field (float32 or bfloat16); LayerNorms and biases stay in the model's float dtype."""

    ln1_weight: torch.Tensor
    ln1_bias: torch.Tensor
    attn_weight: torch.Tensor  # (hidden, 3 * hidden): q, k, v
    attn_bias: torch.Tensor
    proj_weight: torch.Tensor  # (hidden, hidden)
    proj_bias: torch.Tensor
    ln2_weight: torch.Tensor
    ln2_bias: torch.Tensor
    fc_weight: torch.Tensor  # (hidden, inner)
    fc_bias: torch.Tensor
    mlp_weight: torch.Tensor  # (inner, hidden)
    mlp_bias: torch.Tensor
    scale: float  # attention scale of this layer
    attn_weight_scale: torch.Tensor | None = None  # int8 weights only: one scale per output row
    proj_weight_scale: torch.Tensor | None = None
    fc_weight_scale: torch.Tensor | None = None
    mlp_weight_scale: torch.Tensor | None = None

    @property
    def projections(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """The four projections' (weight, scale or None), by name."""
        return {name: (getattr(self, f"{name}_weight"), getattr(self, f"{name}_weight_scale"))
                for name in _PROJECTIONS}


_PROJECTIONS = ("attn", "proj", "fc", "mlp")
#: DecoderLayerWeights' tensors in the model's float dtype whatever the projections' kind
_FLOAT_FIELDS = ("ln1_weight", "ln1_bias", "attn_bias", "proj_bias", "ln2_weight", "ln2_bias", "fc_bias", "mlp_bias")


class CacheBoundKernel:
    """What both decoding kernels' wrappers share: the kernel's structs hold raw pointers into a KVCache's buffers,
    rebound whenever the cache has grown into new ones. Subclasses set ``cache``, ``_layers`` (structs with
    ``keys`` / ``values``), ``_model`` (with ``capacity``) and ``_cache_state = ()``."""

    cache: Any
    _layers: Any
    _model: Any
    _cache_state: tuple

    def _bind_cache(self) -> None:
        """Point the kernel at the cache's buffers (again, if the cache has grown into new ones)."""
        cache = self.cache
        state = tuple(t.data_ptr() for t in cache.keys + cache.values)
        if state != self._cache_state:
            for struct, k, v in zip(self._layers, cache.keys, cache.values):
                struct.keys, struct.values = k.data_ptr(), v.data_ptr()
            self._model.capacity = cache.capacity
            self._cache_state = state


def step_mask(attention_mask: torch.Tensor | None, batch: int, past: int) -> tuple[int | None, int]:
    """(pointer, row stride) of a decoding step's boolean ``(batch, 1, 1, past + 1)`` mask (True = attend), checked
    before a kernel reads it; (None, 0) without a mask."""
    import torch

    if attention_mask is None:
        return None, 0
    if (attention_mask.dtype != torch.bool or attention_mask.stride(-1) != 1 or attention_mask.dim() != 4
            or attention_mask.shape[0] != batch or attention_mask.shape[-1] != past + 1):
        raise ValueError(f"attention_mask must be a boolean ({batch}, 1, 1, {past + 1}) mask over the cached "
                         f"positions and the new one, contiguous in its last dimension; got "
                         f"{attention_mask.dtype} {tuple(attention_mask.shape)}")
    return attention_mask.data_ptr(), attention_mask.stride(0)


class NativeDecoder(CacheBoundKernel):
    """One decoding step of a GPT-2-style decoder through the native kernel (``zoo_decode_step`` in decode.c).

    Built once per ``generate`` call over the model's own tensors (no copy: the kernel reads the parameters in
    place) and a :class:`zoo.generation.KVCache`; each call runs every layer for one new token per row, writes the
    new keys/values into the cache at its current length, and returns the next-token logits. The caller advances the
    cache. Raises ValueError when a tensor is not what the kernel reads (see :meth:`unsupported`).

    Weights are float32 or bfloat16, all of one dtype, with a cache of that dtype (``new_kv_cache`` makes it in the
    model's). In bfloat16 the kernel reads half the bytes and rounds to bf16 where the bf16 forward pass does; the
    logits come back as float32 tensors holding bf16 values. ``upcast`` is GPT-2's ``reorder_and_upcast_attn``
    (a float32 softmax cast to bf16 before it weights the values; nothing changes in float32). ``widen_bf16``
    multiplies bf16 output-embedding rows by widening them even where vdpbf16ps is available (:func:`bf16_dot`), and
    int8 rows on the portable loop even where AVX-512 runs (:func:`int8_vector`), so that both paths can be compared
    on one machine.

    Or the projections and the output embedding are int8 (an int8 model, zoo/quantization.py): int8 ``(out, in)``
    weights with ``(out,)`` scales (the layers' ``*_weight_scale``, ``head_weight_scale``), everything else float32
    or bfloat16 as above. The kernel reads the int8 weights in place and float32 scales (bf16 ones are copied to
    float32 once, here: exactly); ``kind`` says which the kernel reads: ``"float32"``, ``"bfloat16"`` or ``"int8"``.
    """

    def __init__(self, *, wte: torch.Tensor, wpe: torch.Tensor, layers: Sequence[DecoderLayerWeights],
                 ln_f_weight: torch.Tensor, ln_f_bias: torch.Tensor, head_weight: torch.Tensor,
                 head_bias: torch.Tensor | None = None, heads: int, eps: float, activation: str, cache: KVCache,
                 upcast: bool = False, widen_bf16: bool = False, head_weight_scale: torch.Tensor | None = None) -> None:
        import torch

        library, why = _load()
        if library is None:
            raise RuntimeError(f"the native kernels are not available: {why}")
        matrices = {f"layers[{i}].{name}_weight": pair for i, layer in enumerate(layers)
                    for name, pair in layer.projections.items()}
        matrices["head_weight"] = (head_weight, head_weight_scale)
        int8 = any(w.dtype == torch.int8 for w, _ in matrices.values())
        floats = [wte, wpe, ln_f_weight, ln_f_bias] + ([head_bias] if head_bias is not None else [])
        for layer in layers:
            floats += [getattr(layer, f) for f in _FLOAT_FIELDS]
        if not int8:
            floats[4:4] = [w for w, _ in matrices.values()]  # all of one dtype with the rest: checked together
        problem = (self.unsupported(floats, activation, cache) or self.int8_problem(matrices, int8)
                   or self.misshapen(wte, wpe, layers, ln_f_weight, ln_f_bias, head_weight, head_bias, heads, cache,
                                     head_weight_scale))
        if problem:
            raise ValueError(f"the native decoding step cannot run this model: {problem}")
        # the kernel reads float32 scales: a bf16 model's are copied (exactly), float32 ones read in place
        scales = {name: s.to(torch.float32).contiguous() for name, (_, s) in matrices.items() if s is not None}
        self._library = library
        self._torch = torch
        self.cache = cache
        hidden = wte.shape[1]
        self.vocab = head_weight.shape[0]
        self.dtype = wte.dtype
        self.kind = "int8" if int8 else str(wte.dtype).removeprefix("torch.")
        # the kernel holds raw pointers: keep every tensor alive as long as it may run
        self._keep = floats + [w for w, _ in matrices.values()] + list(scales.values())
        self._layers = (_Layer * len(layers))()
        for i, (struct, layer) in enumerate(zip(self._layers, layers)):
            for field in ("ln1", "ln2"):
                setattr(struct, f"{field}_w", getattr(layer, f"{field}_weight").data_ptr())
                setattr(struct, f"{field}_b", getattr(layer, f"{field}_bias").data_ptr())
            for field in _PROJECTIONS:
                setattr(struct, f"{field}_w", getattr(layer, f"{field}_weight").data_ptr())
                setattr(struct, f"{field}_b", getattr(layer, f"{field}_bias").data_ptr())
                scale = scales.get(f"layers[{i}].{field}_weight")
                setattr(struct, f"{field}_s", scale.data_ptr() if scale is not None else None)
            struct.scale = float(layer.scale)
        inner = layers[0].fc_weight.shape[0 if int8 else 1]
        head_scale = scales.get("head_weight")
        self._model = _Model(n_layer=len(layers), hidden=hidden, heads=heads, inner=inner,
                             vocab=self.vocab, activation=ACTIVATIONS[activation], weights=WEIGHT_KINDS[self.kind],
                             dtype=WEIGHT_KINDS[str(wte.dtype).removeprefix("torch.")], upcast=int(bool(upcast)),
                             widen=int(bool(widen_bf16)), stepwise=int(activation in STEPWISE_ACTIVATIONS),
                             eps=float(eps),
                             wte_rows=wte.shape[0], wpe_rows=wpe.shape[0], wte=wte.data_ptr(), wpe=wpe.data_ptr(),
                             lnf_w=ln_f_weight.data_ptr(),
                             lnf_b=ln_f_bias.data_ptr(), head_w=head_weight.data_ptr(),
                             head_b=head_bias.data_ptr() if head_bias is not None else None,
                             head_s=head_scale.data_ptr() if head_scale is not None else None, layers=self._layers)
        self._cache_state: tuple = ()
        self._bind_cache()

    @staticmethod
    def unsupported(tensors: Sequence[torch.Tensor], activation: str, cache: KVCache) -> str:
        """Why the kernel cannot run on these float tensors (empty if it can): contiguous CPU tensors, all float32 or
        all bfloat16 (the first tensor's dtype), the cache included."""
        if activation not in ACTIVATIONS:
            return f"activation {activation!r} is not one it computes ({', '.join(sorted(ACTIVATIONS))})"
        tensors = list(tensors)
        dtype = tensors[0].dtype if tensors else None
        if str(dtype).removeprefix("torch.") not in _FLOAT_KINDS:
            return f"it reads float32 or bfloat16 weights, got {dtype}"
        for t in tensors + list(cache.keys) + list(cache.values):
            if t.dtype != dtype or t.device.type != "cpu" or not t.is_contiguous():
                what = "a cache tensor" if any(t is c for c in cache.keys + cache.values) else "a weight"
                return (f"it reads contiguous CPU tensors of one dtype ({dtype}, the model's, the cache's too), got "
                        f"{what} {t.dtype} on {t.device}{'' if t.is_contiguous() else ' (not contiguous)'}")
        return ""

    @staticmethod
    def int8_problem(matrices: dict[str, tuple[torch.Tensor, torch.Tensor | None]], int8: bool) -> str:
        """Why the projection matrices (name -> (weight, scale or None)) are not what the kernel reads (empty if
        they are): float weights without scales (checked with the other float tensors), or every one of them int8
        (the output embedding too), contiguous on the CPU, each with float32 or bfloat16 scales on the CPU."""
        import torch

        for name, (weight, scale) in matrices.items():
            if not int8:
                if scale is not None:
                    return f"{name} is {weight.dtype} but has scales: only int8 weights take them"
                continue
            if weight.dtype != torch.int8:
                return (f"its projections are int8, but {name} is {weight.dtype}: the kernel reads all of them (the "
                        f"output embedding too) int8 or none; quantize the whole model with "
                        f"zoo.quantization.quantize_int8")
            if weight.device.type != "cpu" or not weight.is_contiguous():
                return (f"it reads contiguous CPU int8 weights, got {name} on {weight.device}"
                        f"{'' if weight.is_contiguous() else ' (not contiguous)'}")
            if scale is None:
                return f"{name} is int8 without its scales (pass the int8 module's weight_scale with it)"
            if scale.dtype not in (torch.float32, torch.bfloat16) or scale.device.type != "cpu":
                return (f"the scales of {name} must be float32 or bfloat16 on the CPU, got {scale.dtype} on "
                        f"{scale.device}")
        return ""

    @staticmethod
    def misshapen(wte: torch.Tensor, wpe: torch.Tensor, layers: Sequence[DecoderLayerWeights],
                  ln_f_weight: torch.Tensor, ln_f_bias: torch.Tensor, head_weight: torch.Tensor,
                  head_bias: torch.Tensor | None, heads: int, cache: KVCache,
                  head_weight_scale: torch.Tensor | None = None) -> str:
        """Which tensor has a shape other than the kernel indexes by (empty if none): it reads raw memory, so every
        shape is checked here, once, rather than trusted. Float weights are ``(in, out)``, int8 ones ``(out, in)``
        with ``(out,)`` scales."""
        if not layers:
            return "the model has no layers"
        int8 = str(layers[0].fc_weight.dtype) == "torch.int8"
        hidden, inner = wte.shape[1], layers[0].fc_weight.shape[0 if int8 else 1]
        if heads < 1 or hidden % heads:
            return f"hidden size {hidden} is not a multiple of the {heads} heads"
        expected = {"wte": (wte.shape[0], hidden), "wpe": (wpe.shape[0], hidden), "ln_f_weight": (hidden,),
                    "ln_f_bias": (hidden,), "head_weight": (head_weight.shape[0], hidden)}
        given = {"wte": wte, "wpe": wpe, "ln_f_weight": ln_f_weight, "ln_f_bias": ln_f_bias, "head_weight": head_weight}
        if head_bias is not None:
            expected["head_bias"], given["head_bias"] = (head_weight.shape[0],), head_bias
        if head_weight_scale is not None:
            expected["head_weight_scale"], given["head_weight_scale"] = (head_weight.shape[0],), head_weight_scale
        # (in, out) of each projection; an int8 weight is stored (out, in)
        matrix = {"attn": (hidden, 3 * hidden), "proj": (hidden, hidden), "fc": (hidden, inner), "mlp": (inner, hidden)}
        per_layer = {"ln1_weight": (hidden,), "ln1_bias": (hidden,), "attn_bias": (3 * hidden,), "proj_bias": (hidden,),
                     "ln2_weight": (hidden,), "ln2_bias": (hidden,), "fc_bias": (inner,), "mlp_bias": (hidden,)}
        for name, (n_in, n_out) in matrix.items():
            per_layer[f"{name}_weight"] = (n_out, n_in) if int8 else (n_in, n_out)
            if int8:
                per_layer[f"{name}_weight_scale"] = (n_out,)
        for i, layer in enumerate(layers):
            for name, shape in per_layer.items():
                expected[f"layers[{i}].{name}"], given[f"layers[{i}].{name}"] = shape, getattr(layer, name)
        for name, shape in expected.items():
            if tuple(given[name].shape) != shape:
                return f"{name} has shape {tuple(given[name].shape)}, expected {shape}"
        if len(cache.keys) != len(layers) or len(cache.values) != len(layers):
            return f"the cache has {len(cache.keys)} layers, the model {len(layers)}"
        rows = cache.keys[0].shape[0]
        for t in cache.keys + cache.values:
            if tuple(t.shape) != (rows, heads, cache.capacity, hidden // heads):
                return (f"a cache layer has shape {tuple(t.shape)}, expected (batch, {heads}, capacity, "
                        f"{hidden // heads})")
        return ""

    def __call__(self, input_ids: torch.Tensor, positions: torch.Tensor,
                 attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids`` (B,) and ``positions`` (B,) int64 -> logits (B, vocab) float32 (holding bf16 values in a
        bfloat16 model); ``attention_mask`` None or a boolean ``(B, 1, 1, past + 1)`` view whose last dimension is
        contiguous (True = attend)."""
        torch = self._torch
        cache = self.cache
        batch, past = input_ids.shape[0], cache.length
        rows = cache.keys[0].shape[0]
        if input_ids.dim() != 1 or tuple(positions.shape) != (batch,) or batch != rows:
            raise ValueError(f"expected input_ids and positions of shape ({rows},), one per cached row; got "
                             f"{tuple(input_ids.shape)} and {tuple(positions.shape)}")
        cache.reserve(past + 1)  # a step outside generate may run past the capacity it was made with
        self._bind_cache()
        ids = input_ids.to(torch.int64).contiguous()
        positions = positions.to(torch.int64).contiguous()
        logits = torch.empty(batch, self.vocab)
        mask_ptr, mask_stride = step_mask(attention_mask, batch, past)
        code = self._library.zoo_decode_step(ctypes.byref(self._model), ids.data_ptr(), positions.data_ptr(), batch,
                                              past, mask_ptr, mask_stride, logits.data_ptr(), torch.get_num_threads())
        if code == -3:
            raise IndexError(f"a token id or position is out of range: ids {ids.tolist()} (the vocabulary has "
                             f"{self._model.wte_rows}), positions {positions.tolist()} (the model has "
                             f"{self._model.wpe_rows}); check the tokenizer matches the model")
        if code == -4:
            raise ValueError(f"the native kernel does not read weight kind {self._model.weights}; reinstall zoo to "
                             f"rebuild it")
        if code != 0:
            raise MemoryError(f"the native decoding step failed (code {code}): out of memory for its scratch buffers")
        return logits
