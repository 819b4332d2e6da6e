"""The fast path of a decoding step on CPU: matrix-vector products spread over the cores, weights read in the
layout that streams fastest, prepared once per ``generate`` call.

At batch 1, decoding a token reads every weight once and does little else, so its speed is the rate at which the
weights stream from memory (benchmarks/bench_generate.py measures it against the machine's bandwidth). The pieces
here serve a model's own decoding step (GPT-2's, zoo/plugins/gpt2/modeling.py, and the native kernel's fallback);
each computes exactly what ``x @ W + b`` computes, up to the summation order inside the product, and falls back to
the plain PyTorch op where it would not pay (autograd on, a GPU, sizes the threads do not divide).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.modeling import is_exporting

__all__ = ["SPLIT_MATMUL_MAX_ROWS", "DecodingProjection", "decode_matmul", "decoding_weight", "has_forward_hooks",
           "project_for_decoding"]


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
    # not in an exported graph (zoo.export): the split is for this machine's threads, and comparing the symbolic
    # row count with the bound would tie the graph's batch and sequence axes to it
    if (threads > 1 and not is_exporting() and rows <= SPLIT_MATMUL_MAX_ROWS and inner % threads == 0
            and x.device.type == "cpu" and not torch.is_grad_enabled() and weight.is_contiguous()):
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
    :func:`decoding_weight` and :func:`decode_matmul`. Elsewhere (GPU, autograd on, a projection without a float
    ``weight``: an int8 one, zoo/quantization.py) this is plainly ``linear(h)``."""
    weight = getattr(linear, "weight", None)
    if h.device.type != "cpu" or torch.is_grad_enabled() or not isinstance(weight, torch.Tensor):
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

