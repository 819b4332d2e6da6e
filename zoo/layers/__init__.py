"""Building blocks the decoder families share, so that a plugin's modeling.py says only how its family differs.

- :mod:`~zoo.layers.linear`: :class:`Linear`, ``nn.Linear`` on the GEMM zoo.gemm chose for this machine, with an
  optional fused activation or residual;
- :mod:`~zoo.layers.norm`: :class:`RMSNorm`;
- :mod:`~zoo.layers.rotary`: :class:`RotaryEmbedding` with every ``rope_type`` transformers knows, partial rotary,
  and :func:`apply_rotary`;
- :mod:`~zoo.layers.attention`: :class:`GroupedQueryAttention` (grouped-query heads through
  ``scaled_dot_product_attention``, optional q/k/v/o biases and per-head q/k RMSNorm, the KV cache of
  zoo.generation) and :func:`sliding_window_mask`;
- :mod:`~zoo.layers.mlp`: :class:`GatedMLP`, ``down(act(gate(x)) * up(x))``.

The maths of each is transformers' (models/llama/modeling_llama.py, modeling_rope_utils.py, masking_utils.py), and
parameter names are the published checkpoints'. Only model code imports this package, so importing torch here is
fine: ``import zoo`` never reaches it.
"""

from __future__ import annotations

from zoo.layers.attention import GroupedQueryAttention, sliding_window_mask
from zoo.layers.linear import Linear, project
from zoo.layers.mlp import GatedMLP
from zoo.layers.norm import RMSNorm
from zoo.layers.rotary import RotaryEmbedding, apply_rotary, rope_parameters, rotate_half

__all__ = ["GatedMLP", "GroupedQueryAttention", "Linear", "RMSNorm", "RotaryEmbedding", "apply_rotary", "project",
           "rope_parameters",
           "rotate_half", "sliding_window_mask"]
