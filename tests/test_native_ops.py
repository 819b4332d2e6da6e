"""The fused elementwise ops of the Llama-style forward pass (zoo/native/ops.c) against their torch spellings.

RMSNorm and the rotation round where the torch ops round, so bf16 results are equal bit for bit and float32 ones
too (RMSNorm's sum runs in another order, within an ulp); ``act(gate) * up`` uses zoo's exp, within float32's last
bits, equal in bf16 for silu. The ops read the views the fused projections return (rows a stride apart, heads of a
(B, T, H, D) projection) in place, and give None (the caller's cue to run the torch ops) where they do not apply.
"""

from __future__ import annotations

import pytest
import torch

from zoo.activations import get_activation
from zoo.layers import GatedMLP, GroupedQueryAttention, RMSNorm
from zoo.layers.rotary import apply_rotary
from zoo.native import ops

pytestmark = pytest.mark.skipif(not ops.available(), reason=f"no native ops: {ops.status()}")

DTYPES = [torch.float32, torch.bfloat16]


def rms_reference(x, weight, eps):  # zoo/layers/norm.py's torch ops (transformers' LlamaRMSNorm)
    h = x.float()
    return weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 37, 200), (1, 1, 896), (5, 16), (2, 7, 3)])
def test_rms_norm_matches_torch(dtype, shape):
    torch.manual_seed(0)
    x = (torch.randn(shape) * 3).to(dtype)
    weight = torch.randn(shape[-1]).to(dtype)
    got = ops.rms_norm(x, weight, 1e-6)
    want = rms_reference(x, weight, 1e-6)
    assert got.shape == want.shape and got.dtype == dtype and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=0 if dtype == torch.bfloat16 else 1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_reads_heads_of_a_fused_projection(dtype):
    """Qwen3's q/k norms: each (B, T, H, D) head of a slice of the q/k/v product, read in place."""
    torch.manual_seed(1)
    qkv = torch.randn(2, 9, 5 * 16 + 2 * 16).to(dtype)
    q = qkv[..., :80].view(2, 9, 5, 16)
    weight = torch.randn(16).to(dtype)
    assert not q.is_contiguous()
    torch.testing.assert_close(ops.rms_norm(q, weight, 1e-5), rms_reference(q, weight, 1e-5),
                               rtol=0 if dtype == torch.bfloat16 else 1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["silu", "gelu", "gelu_new", "gelu_python", "relu", "quick_gelu",
                                        "gelu_fast"])
def test_gated_matches_torch(dtype, activation):
    torch.manual_seed(2)
    gate_up = (torch.randn(4, 11, 2 * 300) * 3).to(dtype)  # one fused product: its two halves are strided views
    gate, up = gate_up.split(300, dim=-1)
    got = ops.gated(gate, up, activation)
    want = get_activation(activation)(gate) * up
    assert got.shape == want.shape and got.dtype == dtype
    if dtype == torch.bfloat16:
        exact = activation in ("silu", "relu", "gelu_python", "quick_gelu", "gelu_fast")
        # zoo's exp and erf differ from torch's in float32's last bit, which can move a bf16 rounding by one step
        torch.testing.assert_close(got, want, rtol=0 if exact else 1e-2, atol=0 if exact else 1e-2)
    else:
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim, rotary_dim", [(64, 64), (128, 128), (16, 16), (16, 8), (64, 32)])
def test_rotary_matches_apply_rotary(dtype, head_dim, rotary_dim):
    """Full and partial rotation of (B, T, H, D) heads read in place from a fused q/k/v product, written in
    attention's (B, H, T, D) layout; bit-equal to apply_rotary in both dtypes (16-pair vectors and the tail loop)."""
    torch.manual_seed(3)
    B, T, Hq, Hk = 2, 9, 6, 2
    qkv = torch.randn(B, T, (Hq + 2 * Hk) * head_dim).to(dtype)
    q = qkv[..., :Hq * head_dim].view(B, T, Hq, head_dim)
    k = qkv[..., Hq * head_dim:(Hq + Hk) * head_dim].view(B, T, Hk, head_dim)
    cos, sin = torch.randn(B, T, rotary_dim).to(dtype), torch.randn(B, T, rotary_dim).to(dtype)
    want_q, want_k = apply_rotary(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
    got_q, got_k = ops.rotary(q, cos, sin), ops.rotary(k, cos, sin)
    assert got_q.shape == (B, Hq, T, head_dim) and got_q.is_contiguous()
    assert torch.equal(got_q, want_q) and torch.equal(got_k, want_k)
    one = ops.rotary(q, cos[:1], sin[:1])  # a batch sharing one position table (B = 1 broadcast)
    assert torch.equal(one, apply_rotary(q.transpose(1, 2), k.transpose(1, 2), cos[:1], sin[:1])[0])


def test_ops_refuse_what_they_do_not_compute():
    x = torch.randn(4, 8)
    w = torch.ones(8)
    assert ops.rms_norm(x.double(), w.double(), 1e-6) is None  # float64
    assert ops.rms_norm(x.bfloat16(), w, 1e-6) is None  # mixed dtypes: torch's promotion rules
    assert ops.rms_norm(x, torch.ones(7), 1e-6) is None
    assert ops.rms_norm(x.t(), torch.ones(4), 1e-6) is None  # channels not contiguous
    assert ops.gated(x, x, "tanh") is None  # an activation ops.c does not have
    assert ops.rotary(x.view(1, 2, 4, 4), torch.ones(1, 2, 3), torch.ones(1, 2, 3)) is None  # odd rotary_dim
    leaf = torch.randn(4, 8, requires_grad=True)
    assert ops.rms_norm(leaf, w, 1e-6) is None  # autograd needs torch's graph
    with torch.no_grad():
        assert ops.rms_norm(leaf, w, 1e-6) is not None


def test_modules_keep_autograd_and_give_the_same_values():
    """Training (gradients recorded) runs the torch ops; inference the fused ones: the same outputs."""
    torch.manual_seed(4)
    norm, mlp = RMSNorm(32), GatedMLP(32, 64)
    attention = GroupedQueryAttention(32, 4, 2, 8, 0)
    x = torch.randn(2, 5, 32, requires_grad=True)
    cos, sin = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    trained = mlp(norm(x), residual=x)
    trained_attention, _ = attention(x, (cos, sin), None, True)
    trained.sum().backward()
    assert x.grad is not None and mlp.gate_proj.weight.grad is not None
    with torch.inference_mode():
        torch.testing.assert_close(mlp(norm(x), residual=x), trained, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(attention(x, (cos, sin), None, True)[0], trained_attention, rtol=1e-6, atol=1e-6)


def test_a_swapped_activation_is_honoured():
    """GatedMLP fuses the activation it was built with; one a user put in its place runs as it is."""
    torch.manual_seed(5)
    mlp = GatedMLP(16, 32)
    x = torch.randn(3, 16)
    with torch.inference_mode():
        before = mlp(x)
        mlp.act_fn = torch.nn.Identity()
        after = mlp(x)
        gate, up = mlp.gate_proj(x), mlp.up_proj(x)
        torch.testing.assert_close(after, mlp.down_proj(gate * up))
        assert not torch.allclose(before, after)


def test_residual_added_inside_the_gemm_only_without_hooks():
    """A hook on the projection sees the projection's own output, never projection + residual."""
    torch.manual_seed(6)
    mlp = GatedMLP(16, 32)
    x, residual = torch.randn(3, 16), torch.randn(3, 16)
    seen = []
    mlp.down_proj.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.inference_mode():
        y = mlp(x, residual=residual)
    torch.testing.assert_close(y, residual + seen[0])


def test_decoder_layer_hooks_see_the_blocks_own_outputs():
    """In float32 a Llama layer adds its residuals inside the o_proj / down_proj GEMMs; a hook on the attention or
    MLP module switches that off, so the hook sees the block's output alone, and the layer's output is unchanged."""
    from zoo.plugins.llama.config import LlamaConfig
    from zoo.plugins.llama.modeling import LlamaForCausalLM

    torch.manual_seed(7)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 64, (2, 6))
    with torch.inference_mode():
        fused = model(ids).logits
        seen = {}
        layer = model.model.layers[0]
        layer.mlp.register_forward_hook(lambda module, args, out: seen.update(mlp=(args[0], out)))
        hooked = model(ids).logits
        mlp_input, mlp_output = seen["mlp"]
        torch.testing.assert_close(mlp_output, layer.mlp(mlp_input), rtol=0, atol=0)  # no residual in it
    torch.testing.assert_close(hooked, fused, rtol=1e-6, atol=1e-6)
