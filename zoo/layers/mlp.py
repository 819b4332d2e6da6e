"""The gated feed-forward block of Llama-style decoders: ``down(act(gate(x)) * up(x))``.

Shazeer 2020, "GLU Variants Improve Transformer" (arXiv:2002.05202): with ``silu`` this is SwiGLU. Module names are
the published checkpoints' (``gate_proj``, ``up_proj``, ``down_proj``; transformers' ``LlamaMLP``), so a
checkpoint's ``mlp.gate_proj.weight`` loads as it is. Outside autograd, on CPU, ``act(gate) * up`` is one pass of
zoo.native.ops, and ``residual`` (what the block's output is added to) is added inside the down projection's GEMM in
float32, where that rounds as the separate addition does.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.activations import get_activation
from zoo.layers.linear import Linear, add_into, project
from zoo.native import ops

__all__ = ["GatedMLP"]


class GatedMLP(nn.Module):
    """``hidden -> 2 x intermediate (gate, up) -> hidden``; ``bias`` on all three projections or on none."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str = "silu", bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = Linear(hidden_size, intermediate_size, bias=bias)
        self.up_proj = Linear(hidden_size, intermediate_size, bias=bias)
        self.down_proj = Linear(intermediate_size, hidden_size, bias=bias)
        self.act_fn = get_activation(activation)  # checked here: an unknown name fails at build time
        self.activation = activation
        self._named_act = id(self.act_fn)  # the fused product computes this activation, not one swapped in later

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``down(act(gate(x)) * up(x))``, plus ``residual`` when given."""
        gate, up = project(x, self.gate_proj, self.up_proj)  # one product where it can be
        h = ops.gated(gate, up, self.activation) if id(self.act_fn) == self._named_act else None
        if h is None:
            h = self.act_fn(gate) * up
        return add_into(self.down_proj, h, residual)  # (B, T, C)
