"""zoo.layers.RMSNorm and zoo.layers.GatedMLP against transformers' LlamaRMSNorm and LlamaMLP.

Same weights, same inputs: float32 and bfloat16 outputs must be bit-identical, since both modules are the same ops
in the same order (RMSNorm's statistics in float32, the normalised vector cast to the input dtype before the weight
multiplies it). The module names are the checkpoints' (``weight``; ``gate_proj`` / ``up_proj`` / ``down_proj``).
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

from zoo.layers import GatedMLP, RMSNorm


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("eps", [1e-6, 1e-5])
def test_rms_norm_equals_transformers(dtype, eps):
    generator = torch.Generator().manual_seed(0)
    ours, theirs = RMSNorm(24, eps=eps), LlamaRMSNorm(24, eps=eps)
    with torch.no_grad():
        weight = 1 + 0.3 * torch.randn(24, generator=generator)
        ours.weight.copy_(weight)
        theirs.weight.copy_(weight)
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    x = (3 * torch.randn(2, 5, 24, generator=generator)).to(dtype)
    got, expected = ours(x), theirs(x)
    assert got.dtype == expected.dtype == dtype
    assert torch.equal(got, expected)
    assert ours.variance_epsilon == eps and "eps=" in repr(ours)
    assert [name for name, _ in ours.named_parameters()] == ["weight"]


def test_rms_norm_reset_parameters_gives_ones():
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.mul_(3)
    norm.reset_parameters()
    assert torch.equal(norm.weight.detach(), torch.ones(8))


@pytest.mark.parametrize(("act", "bias"), [("silu", False), ("gelu", True), ("gelu_pytorch_tanh", False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gated_mlp_equals_transformers(act, bias, dtype):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=16, num_attention_heads=2, intermediate_size=40, hidden_act=act,
                                      mlp_bias=bias)
    theirs = LlamaMLP(config)
    ours = GatedMLP(16, 40, act, bias=bias)
    missing, unexpected = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert not missing and not unexpected  # the checkpoint names
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    x = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(1)).to(dtype)
    assert torch.equal(ours(x), theirs(x))
