"""int8 weight-only quantization of a model's projections: ``from_pretrained(..., quantization="int8")``.

Every projection of the blocks and heads (``nn.Linear``, ``zoo.layers.Linear``, GPT-2's ``Conv1D``) becomes an
:class:`Int8Linear`: its weight is stored as int8, one scale per output channel (symmetric, no zero point),

    scale[o] = max_i |W[o, i]| / 127        q[o, i] = clamp(round_half_even(W[o, i] / scale[o]), -127, 127)

so ``W ~ q * scale[:, None]`` and a weight takes a quarter of its float32 bytes (half of bf16). Embedding matrices
stay float. An output projection tied to them (the model's ``get_output_embeddings()``: GPT-2's ``lm_head``, BERT's
and RoBERTa's MLM decoder) is quantized too, into its own int8 copy, while the embedding lookup keeps the float
matrix: the tie is broken (an int8 model is for inference and is never saved), which costs one byte per embedding
value of memory and spares three of every four bytes a decoding step reads in the largest matrix of a small model
(GPT-2's vocabulary projection, 154 MB of its ~240 MB in float32), as llama.cpp's Q8_0 does. Biases and norms stay
float. This is the scheme of torchao's ``Int8WeightOnlyConfig`` (per row, symmetric) and of
``torch.ops.aten._weight_int8pack_mm``.

How a projection computes (measured against the alternatives on an AMX Xeon, 2 cores: docs/quantization.md):

- up to ``GEMV_MAX_ROWS`` rows (decoding), an inner dimension a multiple of 16, on a CPU with bf16 instructions:
  ``_weight_int8pack_mm``, torch's int8-weight matrix-vector kernel, over bf16 activations (a float32 model's
  rows are rounded to bf16 for it and the output widened back): it reads a quarter of the float32 bytes and runs
  ~3x faster than the float32 product at one row, as fast at eight;
- more rows (encoders, prompts) on such a CPU: the int8 weight converted to bf16 (exactly: |q| <= 127), one bf16
  matrix product, the scales applied to its output: 2-3.5x faster than float32 at 128 to 1024 rows;
- anywhere else (a GPU, a CPU without bf16 instructions, float16, torch.compile / export / jit tracing, or an input
  that needs a gradient): the weight converted to the input's dtype, ``F.linear``, the scales applied after. This
  one is exact float32 maths for a float32 model, and differentiable with respect to the input.

The float32 variant of ``_weight_int8pack_mm`` is 10-30x slower than the bf16 one here and is not used. torchao
0.18's ``Int8WeightOnlyConfig`` computes the third way (convert, multiply, scale, as a tensor subclass): 5x slower
than the int8 kernel at one row, no faster than the bf16 path at many, so zoo does not depend on it.

Storage: ``weight_int8`` is ``(out, in)`` int8 for Linear and Conv1D alike (a Conv1D's ``(in, out)`` weight is
transposed when quantized): row ``o`` holds output ``o``'s weights contiguously, the layout ``_weight_int8pack_mm``
and a matrix-vector kernel over output rows read. ``weight_scale`` is ``(out,)`` in the model's float dtype.
Both are buffers (they move and cast with the model; casting leaves int8 alone). An int8 model is for inference:
``model.train()`` raises, ``save_pretrained`` raises (no file format transformers reads back holds these
weights: save the float model), ``resize_token_embeddings`` raises, and ``tie_weights`` leaves the int8 output
projection as it is (re-quantized from the embeddings if they changed since). GPT-2 decodes through its native
kernel's int8 path (zoo/native/decode.c) where it is built; other architectures through the forward pass.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ConfigError, ZooError

logger = logging.getLogger(__name__)

__all__ = ["GEMV_MAX_ROWS", "QUANTIZATIONS", "Int8Linear", "check_quantization", "int8_linear", "quantize_int8",
           "quantize_weight"]

#: The values ``from_pretrained(quantization=...)`` accepts.
QUANTIZATIONS = (None, "int8")

#: Up to this many rows an int8 projection runs on ``_weight_int8pack_mm``; beyond, a bf16 matrix product over the
#: converted weight is faster (they break even at about 12 rows on the machine measured, docs/quantization.md).
GEMV_MAX_ROWS = 12

#: torch 2.13's CPU ``_weight_int8pack_mm`` reads past its operands (wrong values, or a crash) when the inner
#: dimension is not a multiple of 16 (probed on K = 3 ... 3072); other widths take the bf16 product instead.
_GEMV_K_MULTIPLE = 16

#: Weights are quantized this many elements at a time, so the float temporaries stay small for any matrix.
_CHUNK_ELEMENTS = 1 << 22


def check_quantization(quantization: Any) -> str | None:
    """``quantization`` as given when zoo computes it (None or ``"int8"``); anything else is a ConfigError."""
    if quantization is None or (isinstance(quantization, str) and quantization == "int8"):
        return quantization
    raise ConfigError(f"quantization={str(quantization)[:60]!r} is not available in zoo; pass quantization='int8' "
                      f"(int8 weights, one scale per output channel) or leave it out (None: float weights)")


def quantize_weight(weight: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out, in)`` float weight -> (``(out, in)`` int8, ``(out,)`` scales in ``dtype``, default the weight's).

    The scale of a row is its largest magnitude over 127 (a row of zeros gets scale 1 and zeros); each value is
    divided by its row's scale as stored (so a bf16 scale's rounding is accounted for), rounded half to even and
    clamped to [-127, 127]. Computed in float32, a few rows at a time."""
    if weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"quantize_weight takes a 2-D float (out, in) weight, got {weight.dtype} "
                         f"{tuple(weight.shape)}")
    dtype = dtype or weight.dtype
    out_features, in_features = weight.shape
    q = torch.empty(out_features, in_features, dtype=torch.int8, device=weight.device)
    scale = torch.empty(out_features, dtype=dtype, device=weight.device)
    step = max(1, _CHUNK_ELEMENTS // max(1, in_features))
    with torch.no_grad():
        for start in range(0, out_features, step):
            rows = weight[start:start + step].float()  # (r, in)
            s = (rows.abs().amax(dim=1) / 127).to(dtype)  # (r,)
            s = torch.where(s > 0, s, torch.ones_like(s))
            scale[start:start + step] = s
            q[start:start + step] = torch.round(rows / s.float()[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def _bf16_cpu() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), which both fast paths run on."""
    global _BF16
    if _BF16 is None:
        try:
            _BF16 = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        except (AttributeError, RuntimeError):  # a torch build without the probes: assume none
            _BF16 = False
        _BF16 = _BF16 and hasattr(torch.ops.aten, "_weight_int8pack_mm")
    return _BF16


_BF16: bool | None = None


def _fast(x: torch.Tensor, q: torch.Tensor) -> bool:
    return (type(x) is torch.Tensor and x.device.type == "cpu" and q.device.type == "cpu"
            and x.dtype in (torch.float32, torch.bfloat16) and _bf16_cpu()
            and not (torch.is_grad_enabled() and x.requires_grad)
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing())


def int8_linear(x: torch.Tensor, weight_int8: torch.Tensor, weight_scale: torch.Tensor,
                bias: torch.Tensor | None = None, *, scale_bf16: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ (weight_int8 * weight_scale[:, None]).T + bias`` in ``x``'s dtype, on the path the module docstring
    gives for ``x``. ``weight_int8`` is ``(out, in)``; ``scale_bf16``, when given, is ``weight_scale`` in bf16
    (a caller that keeps one spares the conversion)."""
    out_features = weight_int8.shape[0]
    if not _fast(x, weight_int8):
        y = F.linear(x, weight_int8.to(x.dtype)) * weight_scale.to(x.dtype)  # (..., out)
        return y + bias.to(x.dtype) if bias is not None else y
    # a decoding step's product takes ~60 us: the ops around it are kept few (each costs 1-2 us in Python)
    rows = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])  # (M, in)
    xb = rows.to(torch.bfloat16)
    if not xb.is_contiguous():
        xb = xb.contiguous()
    if rows.shape[0] <= GEMV_MAX_ROWS and rows.shape[1] % _GEMV_K_MULTIPLE == 0:
        sb = scale_bf16 if scale_bf16 is not None else weight_scale.to(torch.bfloat16)
        y = torch.ops.aten._weight_int8pack_mm(xb, weight_int8, sb)  # (M, out) bf16
        if bias is not None and bias.dtype == x.dtype:
            # bf16 + a float32 bias is float32: adding it is also the widening, in one op
            y = y.add_(bias) if y.dtype == bias.dtype else torch.add(y, bias)
        else:
            y = y.to(x.dtype)
            y = y.add_(bias.to(x.dtype)) if bias is not None else y
    else:
        y = torch.mm(xb, weight_int8.to(torch.bfloat16).t()).to(x.dtype)  # (M, out)
        scale = weight_scale.to(x.dtype)
        y = torch.addcmul(bias.to(x.dtype), y, scale) if bias is not None else y.mul_(scale)
    return y if x.dim() == 2 else y.view(*x.shape[:-1], out_features)


class Int8Linear(nn.Module):
    """A projection with an int8 weight (``(out, in)``, per-output-channel scales): ``forward(x, activation=None,
    add=None)`` as :class:`zoo.layers.Linear`'s, which also serves GPT-2's Conv1D (``forward(x, activation)``, the
    same ``x @ W + b``). Made by :func:`quantize_int8`; for inference only (``train()`` raises)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, source: str = "Linear") -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.source = source  # the float module it replaced: "Linear" or "Conv1D" (its repr says so)
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=dtype, device=device))
        self.bias = (nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device), requires_grad=False)
                     if bias else None)
        self.training = False

    def __setattr__(self, name: str, value: Any) -> None:
        # tie_weights() sets the output projection's `weight` to the embedding matrix: an int8 head made from a tied
        # matrix keeps its int8 copy while that matrix is unchanged, and quantizes the matrix it is given otherwise;
        # another int8 projection would silently ignore a float weight (forward reads the int8 one): refused
        if name == "weight":
            self._retie(value)
            return
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        if name == "weight":  # an AttributeError still (getattr(m, "weight", None) and hasattr stay as they were)
            raise AttributeError(f"Int8Linear ({self.extra_repr()}) has no float `weight`: it holds int8 weights "
                                 f"(`weight_int8`, `weight_scale`), as quantization='int8' made it; code that reads or "
                                 f"initialises float weights needs the float model (load it without quantization=)")
        return super().__getattr__(name)

    def _retie(self, weight: Any) -> None:
        tied = self.__dict__.get("_tied_state")
        if (tied is not None and isinstance(weight, torch.Tensor) and weight.is_floating_point()
                and tuple(weight.shape) == tuple(self.weight_int8.shape)):
            if _tensor_state(weight) != tied:
                self.weight_int8, self.weight_scale = quantize_weight(weight.detach(), self.weight_scale.dtype)
                self.tie_to(weight)
            return
        raise ZooError(f"cannot set the float weight of an int8 projection ({self.extra_repr()}): it computes with its "
                       f"int8 copy (weight_int8, weight_scale), which a float weight would not change; load the float "
                       f"model (leave quantization out) to set, tie or resize weights, then quantize it")

    def tie_to(self, weight: torch.Tensor) -> None:
        """Record that this int8 copy was quantized from ``weight``, the embedding matrix an output projection is
        tied to, so that tying them again (``tie_weights``, which sets ``module.weight``) keeps it as it is while the
        matrix is unchanged (same storage, version and shape) and re-quantizes the float matrix it is given
        otherwise (of the same shape). Only that state is kept, no reference, so the module still copies and
        pickles (a deep copy re-quantizes its own embeddings when tied)."""
        self.__dict__["_tied_state"] = _tensor_state(weight)

    @classmethod
    def from_float(cls, module: nn.Module) -> Int8Linear:
        """The int8 counterpart of an ``nn.Linear`` (weight ``(out, in)``) or a Conv1D (weight ``(in, out)``, ``nf``
        outputs); the bias is the float module's own tensor."""
        weight = module.weight.detach()
        conv = not isinstance(module, nn.Linear)
        if conv:
            weight = weight.t()  # (out, in)
        out_features, in_features = weight.shape
        new = cls(in_features, out_features, bias=False, dtype=weight.dtype, device="meta",
                  source="Conv1D" if conv else "Linear")
        new.weight_int8, new.weight_scale = quantize_weight(weight)
        if module.bias is not None:
            new.bias = nn.Parameter(module.bias.detach(), requires_grad=False)
        return new

    def forward(self, x: torch.Tensor, activation: str | None = None,
                add: torch.Tensor | None = None) -> torch.Tensor:
        if activation is not None and add is not None:
            raise ValueError("Int8Linear takes an activation or a tensor to add, not both")
        y = int8_linear(x, self.weight_int8, self.weight_scale, self.bias, scale_bf16=self._scale_bf16())
        if activation is not None and activation != "linear":
            from zoo.activations import get_activation

            y = get_activation(activation)(y)
        return y + add if add is not None else y

    def _scale_bf16(self) -> torch.Tensor | None:
        """``weight_scale`` in bf16, for the matrix-vector kernel: kept, remade when the scales change or move."""
        s = self.weight_scale
        if s.dtype == torch.bfloat16 or s.device.type != "cpu":
            return None if s.dtype != torch.bfloat16 else s
        try:
            version = s._version
        except RuntimeError:  # an inference tensor has no version counter, and cannot change in place anyway
            version = 0
        key = (s.data_ptr(), version)
        kept = self.__dict__.get("_kept_scale_bf16")
        if kept is None or kept[0] != key:
            kept = (key, s.to(torch.bfloat16))
            self.__dict__["_kept_scale_bf16"] = kept
        return kept[1]

    def train(self, mode: bool = True) -> Int8Linear:
        if mode:
            raise training_refused()
        return super().train(False)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"int8 from {self.source}")


def _tensor_state(t: torch.Tensor) -> tuple:
    """What changes when a tensor's values may have: its storage, version counter and shape."""
    try:
        version = t._version
    except RuntimeError:  # an inference tensor has no version counter, and cannot change in place anyway
        version = 0
    return t.data_ptr(), version, tuple(t.shape)


def training_refused() -> ZooError:
    """The error ``train()`` of an int8 model raises."""
    return ZooError("this model's projections are int8 (quantization='int8'), which is for inference only: their "
                    "weights cannot be trained; load the float model (leave quantization out) to train or fine-tune")


def _is_projection(module: nn.Module) -> bool:
    """``nn.Linear`` (zoo.layers.Linear included), or a Conv1D in transformers' layout: ``nf`` outputs and a
    2-D ``(in, nf)`` weight (GPT-2's GPT2Conv1D)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point() or weight.is_meta:
        return False
    if isinstance(module, nn.Linear):
        return True
    return type(module).__name__.endswith("Conv1D") and getattr(module, "nf", None) == weight.shape[1]


def quantize_int8(model: nn.Module) -> nn.Module:
    """Replace every projection of ``model`` by an :class:`Int8Linear`, in place, one module at a time (each float
    weight is freed as its int8 copy is made, so memory never holds much more than the float model); return it in
    eval mode, with ``model.quantization == "int8"``.

    The output projection (``get_output_embeddings()``) is quantized even when it is tied to the input embeddings:
    it gets its own int8 copy and the embeddings stay float (the tie is broken). Other projections whose weight is
    an embedding matrix stay float, as do the embeddings, norms and biases. A model already quantized is returned as
    it is."""
    if getattr(model, "quantization", None) == "int8":
        return model
    model.eval()
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head = _output_projection(model)
    tied_head = head if head is not None and _is_projection(head) and id(head.weight) in embeddings else None
    names = [name for name, m in model.named_modules(remove_duplicate=False)
             if name and _is_projection(m) and (id(m.weight) not in embeddings or m is tied_head)]
    done: dict[int, Int8Linear] = {}  # a module used at two places becomes one int8 module
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        old = getattr(parent, child)
        new = done.get(id(old))
        if new is None:
            new = Int8Linear.from_float(old)
            if old is tied_head:
                new.tie_to(old.weight)
            done[id(old)] = new
        setattr(parent, child, new)
        del old  # its last reference: the float weight is freed now (a shared module's, at its last use)
    if not done:
        raise ZooError(f"quantization='int8' found no projection to quantize in {type(model).__name__} (it quantizes "
                       f"nn.Linear and Conv1D weights that are not embeddings); load it without quantization")
    model.quantization = "int8"  # type: ignore[assignment]
    logger.info("%s: %d projections quantized to int8", type(model).__name__, len(done))
    return model


def _output_projection(model: nn.Module) -> nn.Module | None:
    """The projection onto the vocabulary of a language-model head (zoo's ``get_output_embeddings()``), or None."""
    getter = getattr(model, "get_output_embeddings", None)
    if not callable(getter):
        return None
    try:
        head = getter()
    except (AttributeError, ZooError):  # a name that does not resolve in this model: no head to quantize
        return None
    return head if isinstance(head, nn.Module) else None


def quantize_loaded(loaded: Any, quantization: str | None) -> Any:
    """``from_pretrained``'s result (a model, or ``(model, loading_info)``) with ``quantization`` applied."""
    if quantization is None:
        return loaded
    if isinstance(loaded, tuple):
        return (quantize_int8(loaded[0]), *loaded[1:])
    return quantize_int8(loaded)
