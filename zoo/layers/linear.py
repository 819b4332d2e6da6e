"""``Linear``: ``nn.Linear`` whose product runs on the GEMM zoo chose for this machine (zoo.gemm).

The same module as ``nn.Linear`` (same parameters, names, initialisation, state dict, hooks; ``isinstance(m,
nn.Linear)`` holds), so checkpoints, training and transformers-style code see no difference. Its ``forward`` takes
two optional arguments a plain ``nn.Linear`` lacks, for what usually follows a projection: ``activation`` (a
config.json name, e.g. ``"gelu"``) and ``add`` (a residual), which the packed oneDNN kernel applies while the output
is still in registers instead of reading and writing it again; elsewhere they run as the ops they name.

:func:`add_into` adds a residual inside the GEMM where that rounds as the separate addition (float32).
:func:`project` runs several projections of one input (q, k, v; a gate and its up projection) as one product when
they are plain ``Linear`` modules with no hooks (zoo.gemm.linears), and calls each module otherwise, so a module
a user swapped in (a LoRA wrapper, a quantized one) or a hook on one still runs.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo import gemm
from zoo.generation import has_forward_hooks


class Linear(nn.Linear):
    """``nn.Linear`` on zoo's GEMM: ``forward(x, activation=None, add=None)``."""

    def forward(self, x: torch.Tensor, activation: str | None = None,
                add: torch.Tensor | None = None) -> torch.Tensor:
        return gemm.linear(x, self.weight, self.bias, activation=activation, add=add)


def add_into(module: nn.Module, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """``residual + module(x)``: in float32, with no hooks on a plain ``Linear``, added inside its GEMM (the same
    float32 sum, one pass less); otherwise (bf16 would round once instead of twice) as the separate addition."""
    if residual is None:
        return module(x)
    if (type(module) is Linear and x.dtype == torch.float32 and residual.dtype == torch.float32
            and not has_forward_hooks(module)):
        return module(x, add=residual)
    return residual + module(x)


def project(x: torch.Tensor, *modules: nn.Module) -> tuple[torch.Tensor, ...]:
    """``tuple(m(x) for m in modules)``, as one product where that computes the same (see the module docstring)."""
    if all(type(m) is Linear and not has_forward_hooks(m) for m in modules):
        return gemm.linears(x, [m.weight for m in modules], [m.bias for m in modules])
    return tuple(m(x) for m in modules)
