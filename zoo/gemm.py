"""The GEMM every projection runs on: the fastest correct one torch offers on this machine, chosen once per process
by measuring it.

Why it exists: torch's default CPU ``F.linear`` calls MKL's sgemm (float32) or oneDNN's matmul with a plain weight
(bfloat16), which re-lays the weight out for its micro-kernel on every call. On the AMD EPYC machines zoo is
measured on, MKL's sgemm runs at ~170 GFLOP/s where oneDNN with a weight packed once reaches ~410; on Intel Xeons
with AMX, packed bf16 weights run small products (a decoding batch, a short prompt) 2x faster than plain ones. Which
kernel wins depends on the CPU, the torch build and the dtype, so zoo does not guess: on first use per dtype it times
each kernel this torch build offers on one projection-sized product, keeps the fastest for the process, and says
which in :func:`status`. The kernels (all torch's own, what inductor uses after ``freezing``):

- ``aten``: ``torch.nn.functional.linear`` itself (MKL / oneDNN plain); always available, the fallback;
- ``onednn-packed``: ``torch.ops.mkldnn._linear_pointwise`` over a weight re-laid out once by
  ``torch.ops.mkldnn._reorder_linear_weight``; it can also apply the activation that follows (GELU, SiLU, ReLU,
  tanh, sigmoid) or add a residual while the output is still in registers.

(Inductor's third, ``torch.ops.mkl._mkl_linear`` over an MKL-packed float32 weight, is not offered: it uses the
packed weight only for the one row count it was packed for and runs plain ``F.linear`` for every other, and a
model's row count changes with every batch.)

A packed weight is a copy, kept beside the parameter (not in the model's state, so saving, ``state_dict`` and
training see only the parameter) and re-made when the parameter changes (``Tensor._version``) or is replaced. Packed
copies are capped at :data:`PACK_LIMIT_FRACTION` of the machine's memory in all, and none is made that would leave
less than that share free: past either, projections run on ``aten`` (no copy) rather than risk a large model not
fitting. :func:`release` drops them all.

A projection takes the fast path only where nothing else can notice: a CPU float32/bfloat16 tensor of the weight's
dtype, no autograd graph to record (``torch.no_grad`` / ``inference_mode``, or no tensor that requires a gradient),
not while torch.compile / torch.export / torch.jit trace the model (they must see ``F.linear``). Everything else runs
``F.linear`` exactly as before. In bfloat16 the activation and the residual run after the product, not in it: a
bf16 ``F.linear`` rounds its output to bf16 before them, and fusing would skip that rounding, so results would no
longer be bit-identical to transformers' (they are, tests/plugins/test_llama.py). Float32 results differ from
unfused ones only in rounding (within 1e-6). ``ZOO_GEMM=aten|onednn-packed`` forces a kernel (``auto``, the default,
measures); a kernel this torch build lacks falls back to ``aten`` with a warning.

Outputs equal ``F.linear``'s to float32 rounding (tests/test_gemm.py: within 1e-5, every kernel, with and without a
fused activation or residual).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

__all__ = ["KERNELS", "PACK_LIMIT_FRACTION", "choice", "linear", "linears", "release", "status"]

KERNELS = ("aten", "onednn-packed")

#: The share of physical memory that packed weight copies may take in all.
PACK_LIMIT_FRACTION = 0.25

#: config.json activation names oneDNN applies inside the product, as (post-op, algorithm): the same functions as
#: zoo.activations computes after it (F.gelu exact, the tanh approximation, SiLU, ...).
FUSED_ACTIVATIONS: dict[str, tuple[str, str]] = {
    "gelu": ("gelu", "none"), "gelu_python": ("gelu", "none"),
    "gelu_new": ("gelu", "tanh"), "gelu_pytorch_tanh": ("gelu", "tanh"), "gelu_python_tanh": ("gelu", "tanh"),
    "relu": ("relu", ""), "silu": ("swish", ""), "swish": ("swish", ""), "tanh": ("tanh", ""),
    "sigmoid": ("sigmoid", ""),
}

#: A kernel that fuses activations and residuals is kept if it measures at least this share of the fastest's rate.
FUSING_MARGIN = 0.95

#: The product each kernel is timed on: a projection of a short batch (128 tokens, hidden 768 -> 3 * 768), and how
#: many interleaved rounds (each kernel's best counts).
PROBE_SHAPE = (128, 768, 2304)
PROBE_ROUNDS = 7


@dataclass
class _Choice:
    kernel: str
    rates: dict[str, float] = field(default_factory=dict)  # GFLOP/s of each kernel timed
    why: str = ""


_lock = threading.RLock()  # re-entrant: a weight freed (and forgotten) while packing another
_choices: dict[torch.dtype, _Choice] = {}
# ids of the tensors packed together (one weight, or the weights and biases linears() stacks) -> (weakrefs to
# them, their versions when packed, the packed weight, the stacked bias or None). Keyed by id: a dict keyed by the
# tensors themselves (or a WeakKeyDictionary) would compare them with ==, which is elementwise.
_packed: dict[tuple[int, ...], tuple[tuple[Callable[[], Any], ...], tuple[int, ...], Any, Any]] = {}
_packed_bytes = 0


def _onednn_pack(weight: torch.Tensor) -> Any:
    return torch.ops.mkldnn._reorder_linear_weight(weight, None)


def _onednn_run(x: torch.Tensor, packed: Any, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


#: each packed kernel's (pack the (out, in) weight, run x over the packed weight and the bias)
_PACKERS: dict[str, tuple[Callable[[torch.Tensor], Any], Callable[..., torch.Tensor]]] = {
    "onednn-packed": (_onednn_pack, _onednn_run)}


def offered(dtype: torch.dtype) -> list[str]:
    """The kernels this torch build offers for ``dtype`` (``aten`` always)."""
    kernels = ["aten"]
    if dtype not in (torch.float32, torch.bfloat16):
        return kernels
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight") and hasattr(
            torch.ops.mkldnn, "_linear_pointwise"):
        kernels.append("onednn-packed")
    return kernels


def _measure(dtype: torch.dtype, kernels: list[str]) -> _Choice:
    """Time every kernel on :data:`PROBE_SHAPE`, interleaved (one call of each per round, the best of the rounds), so
    that a burst of load from another process slows all of them alike rather than deciding the choice."""
    rows, inner, out = PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, inner, generator=generator).to(dtype)
    w = (torch.randn(out, inner, generator=generator) * inner**-0.5).to(dtype)
    b = torch.zeros(out, dtype=dtype)
    flops = 2.0 * rows * inner * out
    runs: dict[str, Callable[[], Any]] = {"aten": lambda: F.linear(x, w, b)}
    with torch.inference_mode():
        reference = F.linear(x, w, b).float()
        for kernel in kernels[1:]:
            pack, run = _PACKERS[kernel]
            try:
                packed = pack(w)
                y = run(x, packed, b)
            except RuntimeError as exc:  # a build that declares the op but cannot run it here
                logger.debug("GEMM kernel %s unusable: %s", kernel, exc)
                continue
            tolerance = 1e-4 if dtype == torch.float32 else 5e-2
            if not torch.allclose(y.float(), reference, atol=tolerance, rtol=tolerance):
                logger.warning("GEMM kernel %s disagrees with F.linear on this machine; not using it", kernel)
                continue
            runs[kernel] = functools.partial(run, x, packed, b)
        best = dict.fromkeys(runs, float("inf"))
        for run in runs.values():  # the first call of a kernel creates its primitive
            run()
        for _ in range(PROBE_ROUNDS):
            for kernel, run in runs.items():
                start = time.perf_counter()
                run()
                best[kernel] = min(best[kernel], time.perf_counter() - start)
    rates = {kernel: flops / seconds / 1e9 for kernel, seconds in best.items()}
    fastest = max(rates, key=rates.__getitem__)
    if rates.get("onednn-packed", 0.0) >= FUSING_MARGIN * rates[fastest]:
        # as good within the timing noise, and it also saves the pass over the output an activation or residual costs
        return _Choice("onednn-packed", rates, "fastest measured, counting what it fuses")
    return _Choice(fastest, rates, "fastest measured")


def choice(dtype: torch.dtype) -> str:
    """The kernel projections of ``dtype`` run on in this process: ``ZOO_GEMM``'s, else measured on first use."""
    made = _choices.get(dtype)
    if made is not None:
        return made.kernel
    with _lock:
        made = _choices.get(dtype)
        if made is None:
            made = _choose(dtype)
            _choices[dtype] = made
            logger.debug("GEMM for %s: %s (%s; GFLOP/s %s)", dtype, made.kernel, made.why, made.rates)
    return made.kernel


def _choose(dtype: torch.dtype) -> _Choice:
    kernels = offered(dtype)
    forced = os.environ.get("ZOO_GEMM", "auto").strip().lower() or "auto"
    if forced != "auto":
        if forced not in KERNELS:
            logger.warning("ZOO_GEMM=%s is not one of auto, %s; measuring instead", forced, ", ".join(KERNELS))
        elif forced in kernels:
            return _Choice(forced, {}, "set by ZOO_GEMM")
        else:
            logger.warning("ZOO_GEMM=%s: this torch build has no such kernel for %s; using aten", forced, dtype)
            return _Choice("aten", {}, f"ZOO_GEMM={forced} is not offered by this torch build")
    if len(kernels) == 1:
        return _Choice("aten", {}, "the only kernel this torch build offers for this dtype")
    return _measure(dtype, kernels)


def _room_for(size: int) -> bool:
    """Whether a copy of ``size`` bytes leaves at least :data:`PACK_LIMIT_FRACTION` of the machine's memory free
    (a large model loaded beside other work must not be pushed into swap by copies that only make it faster)."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return (os.sysconf("SC_AVPHYS_PAGES") * page - size) >= os.sysconf("SC_PHYS_PAGES") * page * PACK_LIMIT_FRACTION
    except (ValueError, OSError, AttributeError):
        return True


def _memory_limit() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * PACK_LIMIT_FRACTION)
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def _version(tensor: torch.Tensor) -> int:
    # an inference tensor keeps no version counter (it cannot be changed outside inference_mode anyway)
    return -1 if tensor.is_inference() else tensor._version


def _pack(kernel: str, weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...] = (),
          in_out: bool = False) -> tuple[Any, Any] | None:
    """(``kernel``'s packed copy of ``weights`` stacked by output rows, their ``biases`` stacked or None), made on
    first use and re-made when any of them changes or is replaced; None past the memory cap. A single weight may be
    ``(in, out)`` (``in_out``)."""
    global _packed_bytes
    together = weights + biases
    key = tuple(id(t) for t in together)
    # the version counter sees in-place changes; the data pointer and dtype see ``module.to(dtype)``, which swaps a
    # parameter's ``.data`` and keeps both the object and its counter
    versions = tuple((_version(t), t.data_ptr(), t.dtype) for t in together if t is not None)
    entry = _packed.get(key)
    alive = entry is not None and all(ref() is t for ref, t in zip(entry[0], together))
    if alive and entry[1] == versions:
        return entry[2], entry[3]
    with _lock:
        size = sum(w.numel() * w.element_size() for w in weights)
        if not alive and (_packed_bytes + size > _memory_limit() or not _room_for(size)):
            return None
        # outside inference mode, so the copy serves every later call; an inference tensor (a weight made under
        # inference_mode) can only be read inside it, and so can its copy
        with torch.inference_mode(weights[0].is_inference()), torch.no_grad():
            plain = [w.detach() for w in weights]
            stack = plain[0].t().contiguous() if in_out else torch.cat(plain) if len(plain) > 1 else plain[0]
            packed = _PACKERS[kernel][0](stack)
            bias = torch.cat([b.detach() if b is not None else torch.zeros(w.shape[0], dtype=w.dtype)
                              for w, b in zip(weights, biases)]) if any(b is not None for b in biases) else None
        if not alive:
            _packed_bytes += size
            for t in weights:  # whichever goes first takes the copy with it
                weakref.finalize(t, _forget, key, size)
        refs = tuple(weakref.ref(t) if t is not None else (lambda: None) for t in together)
        _packed[key] = (refs, versions, packed, bias)
        return packed, bias


def _forget(key: tuple[int, ...], size: int) -> None:
    """A tensor packed under ``key`` is gone: drop the copy (once, whichever of its tensors went first)."""
    global _packed_bytes
    with _lock:
        entry = _packed.get(key)
        if entry is not None and any(ref() is None for ref in entry[0]):
            del _packed[key]
            _packed_bytes = max(0, _packed_bytes - size)


def release() -> None:
    """Drop every packed weight copy (they are re-made on the next projection that uses one)."""
    global _packed_bytes
    with _lock:
        _packed.clear()
        _packed_bytes = 0


def _fast_path(x: torch.Tensor, weight: torch.Tensor, in_out: bool) -> bool:
    return (type(x) is torch.Tensor and x.device.type == "cpu" and weight.device.type == "cpu"
            and x.dtype == weight.dtype and x.dtype in (torch.float32, torch.bfloat16) and x.dim() >= 2
            and weight.dim() == 2 and x.shape[-1] == weight.shape[0 if in_out else 1]
            and weight.layout == torch.strided
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing())


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           activation: str | None = None, add: torch.Tensor | None = None, in_out: bool = False) -> torch.Tensor:
    """``act(x @ weight.T + bias)`` or ``x @ weight.T + bias + add``, on this process's GEMM (see the module
    docstring). ``weight`` is in nn.Linear's ``(out, in)`` layout, or ``(in, out)`` (GPT-2's Conv1D) with
    ``in_out=True``. ``activation`` is a config.json name (zoo.activations); ``add`` a tensor of the output's shape
    (a residual). Not both."""
    if activation is not None and add is not None:
        raise ValueError("linear takes an activation or a tensor to add, not both")
    if _fast_path(x, weight, in_out) and (bias is None or bias.dtype == x.dtype):
        kernel = choice(x.dtype)
        if kernel != "aten":
            made = _pack_or_give_up(kernel, (weight,), (), in_out)
            if made is not None:
                return _run_packed(x, made[0], weight.shape[1 if in_out else 0], bias, activation, add)
    if in_out:
        rows = x.reshape(-1, x.shape[-1])
        y = (torch.addmm(bias, rows, weight) if bias is not None else rows @ weight).view(*x.shape[:-1], -1)
    else:
        y = F.linear(x, weight, bias)
    return _then(y, activation, add)


def linears(x: torch.Tensor, weights: Sequence[torch.Tensor],
            biases: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, ...]:
    """``tuple(F.linear(x, w, b) for w, b in zip(weights, biases))`` as one product where the packed kernel runs:
    over one packed copy of the weights stacked along the output dimension (q, k and v; a gate and its up
    projection), whose outputs are returned as views of one tensor. A wider product keeps the micro-kernel busier
    than two or three narrow ones (a grouped-query k/v projection is 1/7 of q's width) and reads ``x`` once. The
    values are those of the separate products (each output is the same dot product)."""
    first = weights[0]
    if (len(weights) > 1 and _fast_path(x, first, False) and all(
            w.dtype == first.dtype and w.device == first.device and w.dim() == 2 and w.shape[1] == first.shape[1]
            and w.layout == torch.strided for w in weights)
            and all(b is None or b.dtype == x.dtype for b in biases) and choice(x.dtype) == "onednn-packed"):
        made = _pack_or_give_up("onednn-packed", tuple(weights), tuple(biases))
        if made is not None:
            y = torch.ops.mkldnn._linear_pointwise(x.contiguous(), made[0], made[1], "none", [], "")
            return tuple(y.split([w.shape[0] for w in weights], dim=-1))
    return tuple(F.linear(x, w, b) for w, b in zip(weights, biases))


def _pack_or_give_up(kernel: str, weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...],
                     in_out: bool = False) -> tuple[Any, Any] | None:
    """:func:`_pack`; a weight this build cannot pack makes its dtype run on aten from then on (None)."""
    try:
        return _pack(kernel, weights, biases, in_out)
    except RuntimeError as exc:
        logger.warning("GEMM kernel %s failed to pack a %s weight (%s); using aten", kernel,
                       tuple(weights[0].shape), exc)
        _choices[weights[0].dtype] = _Choice("aten", {}, f"{kernel} failed to pack a weight: {exc}")
        return None


def _run_packed(x: torch.Tensor, packed: Any, out_features: int, bias: torch.Tensor | None,
                activation: str | None, add: torch.Tensor | None) -> torch.Tensor:
    """oneDNN over the packed weight; in float32 with the activation or the residual applied inside the product."""
    x = x.contiguous()
    if x.dtype == torch.float32:
        if add is not None and add.shape == (*x.shape[:-1], out_features) and add.dtype == x.dtype:
            return torch.ops.mkldnn._linear_pointwise.binary(x, add.contiguous(), packed, bias, "add")
        if activation in FUSED_ACTIVATIONS:
            attr, algorithm = FUSED_ACTIVATIONS[activation]
            return torch.ops.mkldnn._linear_pointwise(x, packed, bias, attr, [], algorithm)
    return _then(torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], ""), activation, add)


def _then(y: torch.Tensor, activation: str | None, add: torch.Tensor | None) -> torch.Tensor:
    """``activation(y)`` / ``y + add`` as separate ops."""
    if activation is not None and activation != "linear":
        from zoo.activations import get_activation

        y = get_activation(activation)(y)
    return y + add if add is not None else y


def status() -> dict[str, Any]:
    """What projections run on, per dtype measured so far: ``{"float32": {"kernel": ..., "why": ...,
    "gflops": {kernel: rate}}, ..., "packed_bytes": n, "packed_limit_bytes": n}``."""
    report: dict[str, Any] = {str(dtype).removeprefix("torch."): {"kernel": c.kernel, "why": c.why,
                                                                    "gflops": {k: round(v, 1) for k, v in
                                                                               c.rates.items()}}
                              for dtype, c in _choices.items()}
    report["packed_bytes"] = _packed_bytes
    report["packed_limit_bytes"] = _memory_limit()
    return report


def _reset_for_tests() -> None:
    """Forget the choices (the next projection measures again) and the packed copies."""
    with _lock:
        _choices.clear()
    release()
