"""RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization", arXiv:1910.07467).

Scales each vector by the reciprocal of its root mean square, then by a learned per-channel weight; no mean is
subtracted and there is no bias. The arithmetic is transformers' ``LlamaRMSNorm`` (models/llama/modeling_llama.py)
op for op: the statistics in float32 whatever the input dtype, the normalised vector cast back to the input dtype
*before* the weight multiplies it, so bf16 models round where transformers' round. Outside autograd, on CPU, the
seven ops run as one pass of zoo.native.ops (same rounding points; float32 sums in another order).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.native import ops

__all__ = ["RMSNorm"]


class RMSNorm(nn.Module):
    """``weight * x / sqrt(mean(x^2) + eps)`` over the last dimension (Llama, Mistral, Qwen, ... and Qwen3's q/k)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    @property
    def variance_epsilon(self) -> float:
        """transformers' name for ``eps``."""
        return self.eps

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = ops.rms_norm(x, self.weight, self.eps)
        if fused is not None:
            return fused
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., C) unit RMS
        return self.weight * x.to(dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}"
