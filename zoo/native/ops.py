"""Fused elementwise ops of the Llama-style forward pass (``ops.c``): RMSNorm, ``act(gate) * up`` and rotary
positions, one pass each over float32 or bfloat16 tensors on CPU.

zoo/layers calls them where they compute what the torch ops compute (same rounding points; see ops.c) and gets
``None`` otherwise: the library is absent or turned off (``ZOO_NATIVE=0``), a tensor is not on CPU or not in one
of the two dtypes, or autograd would need the ops' graph (``torch.is_grad_enabled()`` and a tensor that requires a
gradient: training keeps the torch ops, whose backward is torch's). Each function checks what it reads, so a caller
only has to fall back on ``None``.
"""

from __future__ import annotations

import ctypes
import functools
from typing import TYPE_CHECKING, Any

from zoo.native import ACTIVATIONS, STEPWISE_ACTIVATIONS, open_library

if TYPE_CHECKING:
    import torch

__all__ = ["available", "gated", "rms_norm", "rotary", "status"]

ABI_VERSION = 1
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Any, str]:
    import torch  # noqa: F401  (first: the library's OpenMP symbols must resolve to torch's libgomp)

    library, why = open_library("_ops", "ops.c", "zoo_ops_abi_version", ABI_VERSION)
    if library is not None:
        library.zoo_ops_rms_norm.argtypes = [_PTR, _I64, _I64, _I64, _I64, _I64, _PTR, ctypes.c_float, _PTR,
                                             ctypes.c_int]
        library.zoo_ops_gated.argtypes = [_PTR, _PTR, _I64, _I64, _I64, _PTR, ctypes.c_int, ctypes.c_int,
                                          ctypes.c_int]
        library.zoo_ops_rotary.argtypes = [_PTR, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _PTR, _PTR, _I64, _PTR,
                                           ctypes.c_int]
        for name in ("zoo_ops_rms_norm", "zoo_ops_gated", "zoo_ops_rotary"):
            getattr(library, name).restype = None
    return library, why


def available() -> bool:
    """Whether the fused ops are built, loadable and not turned off (``ZOO_NATIVE=0``)."""
    return _load()[0] is not None


def status() -> str:
    """'in use', or why the ops are not used."""
    return _load()[1] or "in use"


def _kind(*tensors: torch.Tensor) -> int | None:
    """1 for bfloat16, 0 for float32: the flag ops.c takes, when every tensor is one dtype on CPU and no gradient
    is being recorded through them; else None."""
    import torch

    first = tensors[0]
    if first.dtype not in (torch.float32, torch.bfloat16) or _load()[0] is None:
        return None
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t.dtype != first.dtype or t.device.type != "cpu" or t.layout != torch.strided or (grad and t.requires_grad):
            return None
    return int(first.dtype == torch.bfloat16)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor | None:
    """``weight * (x.float() * rsqrt(mean(x.float()^2, -1) + eps)).to(x.dtype)`` as a new contiguous tensor, or
    None. ``x`` (..., n) may be a view whose rows lie at two strides (e.g. heads of a (B, T, H, D) projection); its
    last dimension must be contiguous."""
    kind = _kind(x, weight)
    n = x.shape[-1] if x.dim() else 0
    if kind is None or n == 0 or weight.shape != (n,) or not weight.is_contiguous() or x.stride(-1) != 1:
        return None
    if x.is_contiguous():
        outer, inner, xa, xb = x.numel() // n, 1, n, 0
    else:
        try:
            rows = x.view(-1, x.shape[-2], n)  # (a, b, n) at two strides, read in place
        except RuntimeError:  # rows not at two strides: the torch ops take it
            return None
        outer, inner, xa, xb = rows.shape[0], rows.shape[1], rows.stride(0), rows.stride(1)
    out = x.new_empty(x.shape)
    if out.numel():
        _load()[0].zoo_ops_rms_norm(x.data_ptr(), outer, inner, xa, xb, n, weight.data_ptr(), float(eps),
                                    out.data_ptr(), kind)
    return out


def gated(gate: torch.Tensor, up: torch.Tensor, activation: str) -> torch.Tensor | None:
    """``act(gate) * up`` (the gated MLP's product, zoo.activations' ``activation``) as a new tensor, or None.
    ``gate`` and ``up`` (..., n) may be views with rows the same stride apart (the halves of one fused product)."""
    kind = _kind(gate, up)
    code = ACTIVATIONS.get(activation)
    if kind is None or code is None or gate.shape != up.shape or gate.dim() < 1:
        return None
    n = gate.shape[-1]
    g, u = gate.reshape(-1, n), up.reshape(-1, n)  # views when the rows are evenly spaced, as the halves are
    ld = g.stride(0) if g.shape[0] > 1 else n
    if (n > 1 and (g.stride(1) != 1 or u.stride(1) != 1)) or (g.shape[0] > 1 and u.stride(0) != ld):
        return None
    out = gate.new_empty(gate.shape)
    if out.numel():
        _load()[0].zoo_ops_gated(g.data_ptr(), u.data_ptr(), g.shape[0], n, ld, out.data_ptr(), code,
                                 int(kind == 1 and activation in STEPWISE_ACTIVATIONS), kind)
    return out


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor | None:
    """Heads ``x`` (B, T, H, D), any strides but contiguous channels, rotated by ``cos``/``sin`` (B or 1, T, R):
    zoo.layers.rotary.apply_rotary's result for one tensor, (B, H, T, D) contiguous; or None."""
    kind = _kind(x, cos, sin)
    if kind is None or x.dim() != 4 or cos.dim() != 3 or cos.shape != sin.shape:
        return None
    B, T, H, D = x.shape
    R = cos.shape[-1]
    if R > D or R % 2 or cos.shape[1] != T or cos.shape[0] not in (1, B) or (D > 1 and x.stride(3) != 1):
        return None
    cos, sin = cos.expand(B, T, R).contiguous(), sin.expand(B, T, R).contiguous()
    out = x.new_empty(B, H, T, D)
    if out.numel():
        _load()[0].zoo_ops_rotary(x.data_ptr(), B, T, H, D, x.stride(0), x.stride(1), x.stride(2), cos.data_ptr(),
                                  sin.data_ptr(), R, out.data_ptr(), kind)
    return out
