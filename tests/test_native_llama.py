"""The Llama-style native decoding step (zoo/native/decode_llama.c) against the same maths in float64 PyTorch.

Random small models exercise every option the kernel reads: grouped-query heads (ratios 1, 2 and 4), partial
rotary, q/k norms, every bias, a sliding window shorter than the cache, padding masks and several rows. The model's
own forward pass is compared with the step in tests/plugins/test_llama_decoding.py; here the kernel alone is held to
a reference that shares none of its code.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.generation import KVCache
from zoo.native import llama as native_llama

pytestmark = pytest.mark.skipif(not native_llama.available(), reason=f"no native kernel: {native_llama.status()}")


def make_layers(torch_dtype, L, C, H, G, D, I, bias, qk_norm, window, seed=0):
    g = torch.Generator().manual_seed(seed)

    def w(*shape, scale=0.2):
        return (torch.randn(*shape, generator=g) * scale).to(torch_dtype)

    def norm(n):
        return (1 + 0.1 * torch.randn(n, generator=g)).to(torch_dtype)

    def b(n):
        return w(n) if bias else None

    return [native_llama.RMSLayerWeights(
        norm(C), w(H * D, C), b(H * D), w(G * D, C), b(G * D), w(G * D, C), b(G * D),
        norm(D) if qk_norm else None, norm(D) if qk_norm else None, w(C, H * D), b(C), norm(C), w(I, C), b(I),
        w(I, C), b(I), w(C, I, scale=0.1), b(C), window) for _ in range(L)]


def rms(x, w, eps):
    return w.double() * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate(x, cos, sin, rd):
    r, rest = x[..., :rd], x[..., rd:]
    half = rd // 2
    rotated = torch.cat([-r[..., half:], r[..., :half]], dim=-1)
    return torch.cat([r * cos + rotated * sin, rest], dim=-1)


def reference_step(layers, embed, norm, head, ids, cos, sin, keys, values, past, mask, H, G, D, eps):
    """float64: logits (B, V) and the new keys/values (B, G, D) of every layer, from the cached ones."""
    d = torch.float64
    x = embed.double()[ids]  # (B, C)
    B = x.shape[0]
    cos, sin = cos.double()[:, None], sin.double()[:, None]  # (B, 1, rd)
    rd = cos.shape[-1]
    new = []
    for i, lw in enumerate(layers):
        h = rms(x, lw.attn_norm, eps)
        lin = lambda t, w_, b_: t @ w_.double().T + (b_.double() if b_ is not None else 0)  # noqa: E731
        q = lin(h, lw.q_w, lw.q_b).view(B, H, D)
        k = lin(h, lw.k_w, lw.k_b).view(B, G, D)
        v = lin(h, lw.v_w, lw.v_b).view(B, G, D)
        if lw.q_norm is not None:
            q, k = rms(q, lw.q_norm, eps), rms(k, lw.k_norm, eps)
        q, k = rotate(q, cos, sin, rd), rotate(k, cos, sin, rd)
        new.append((k, v))
        K = torch.cat([keys[i][:, :, :past].to(d), k[:, :, None]], dim=2)  # (B, G, S, D)
        Vv = torch.cat([values[i][:, :, :past].to(d), v[:, :, None]], dim=2)
        S = past + 1
        allowed = torch.ones(B, S, dtype=torch.bool) if mask is None else mask.clone()
        if lw.window:
            allowed[:, : max(0, S - lw.window)] = False
        K, Vv = K.repeat_interleave(H // G, dim=1), Vv.repeat_interleave(H // G, dim=1)  # (B, H, S, D)
        scores = (q[:, :, None] @ K.transpose(-1, -2)) * D**-0.5  # (B, H, 1, S)
        scores = scores.masked_fill(~allowed[:, None, None], float("-inf"))
        y = (scores.softmax(-1) @ Vv).reshape(B, H * D)
        x = x + lin(y, lw.o_w, lw.o_b)
        h = rms(x, lw.mlp_norm, eps)
        x = x + lin(F.silu(lin(h, lw.gate_w, lw.gate_b)) * lin(h, lw.up_w, lw.up_b), lw.down_w, lw.down_b)
    return rms(x, norm, eps) @ head.double().T, new


CASES = {
    "mha-full-rotary": dict(H=4, G=4, D=16, rd=16, bias=False, qk_norm=False, window=0),
    "gqa2-partial-bias": dict(H=4, G=2, D=16, rd=8, bias=True, qk_norm=False, window=0),
    "gqa4-qknorm-window": dict(H=8, G=2, D=8, rd=8, bias=False, qk_norm=True, window=3),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_step_matches_float64_reference(case, rows, dtype):
    c = CASES[case]
    L, C, I, V, past, eps = 2, 32, 48, 64, 6, 1e-6
    H, G, D, rd = c["H"], c["G"], c["D"], c["rd"]
    layers = make_layers(dtype, L, C, H, G, D, I, c["bias"], c["qk_norm"], c["window"])
    g = torch.Generator().manual_seed(1)
    embed = (torch.randn(V, C, generator=g)).to(dtype)
    head = (torch.randn(V, C, generator=g) * 0.2).to(dtype)
    norm = (1 + 0.1 * torch.randn(C, generator=g)).to(dtype)
    cache = KVCache(L, rows, G, D, 16, dtype)
    for store in (cache.keys, cache.values):
        for t in store:
            t.copy_(torch.randn(t.shape, generator=g).to(dtype))
    cache.length = past
    keys = [k.clone() for k in cache.keys]
    values = [v.clone() for v in cache.values]
    angles = torch.rand(rows, rd // 2, generator=g) * 6
    cos = torch.cat([angles.cos()] * 2, dim=-1)
    sin = torch.cat([angles.sin()] * 2, dim=-1)
    mask = None
    if rows > 1:  # row 1 is left-padded over its first two positions
        mask = torch.ones(rows, 1, 1, past + 1, dtype=torch.bool)
        mask[1, ..., :2] = False
    ids = torch.randint(0, V, (rows,), generator=g)
    step = native_llama.RMSNativeDecoder(embed=embed, layers=layers, norm=norm, head_weight=head, heads=H,
                                         kv_heads=G, head_dim=D, rotary_dim=rd, eps=eps, scale=D**-0.5,
                                         activation="silu", cache=cache)
    logits = step(ids, cos.to(dtype).float(), sin.to(dtype).float(), mask)
    expected, new = reference_step(layers, embed, norm, head, ids, cos.to(dtype).float(), sin.to(dtype).float(),
                                   keys, values, past, None if mask is None else mask[:, 0, 0], H, G, D, eps)
    # float32: summation order only; bfloat16: the kernel rounds where the bf16 forward pass does, the reference
    # does not round at all, so the gap is a few bf16 steps of the logits' scale
    tol = 1e-4 if dtype == torch.float32 else 6e-2
    scale = expected.abs().max().item()
    assert (logits.double() - expected).abs().max().item() <= tol * scale
    for i, (k, v) in enumerate(new):
        assert torch.allclose(cache.keys[i][:, :, past].double(), k, atol=tol * 10, rtol=tol * 10)
        assert torch.allclose(cache.values[i][:, :, past].double(), v, atol=tol * 10, rtol=tol * 10)
        assert torch.equal(cache.keys[i][:, :, :past], keys[i][:, :, :past])  # the past is left alone


def test_misfits_are_refused_with_the_reason():
    layers = make_layers(torch.float16, 1, 16, 2, 2, 8, 24, False, False, 0)
    embed = torch.zeros(10, 16, dtype=torch.float16)
    cache = KVCache(1, 1, 2, 8, 4, torch.float16)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        native_llama.RMSNativeDecoder(embed=embed, layers=layers, norm=embed[0], head_weight=embed, heads=2,
                                      kv_heads=2, head_dim=8, rotary_dim=8, eps=1e-6, scale=1.0, activation="silu",
                                      cache=cache)
    layers = make_layers(torch.float32, 1, 16, 2, 2, 8, 24, False, False, 0)
    embed = torch.zeros(10, 16)
    with pytest.raises(ValueError, match="q_w has shape"):
        native_llama.RMSNativeDecoder(embed=embed, layers=layers, norm=embed[0], head_weight=embed, heads=4,
                                      kv_heads=2, head_dim=8, rotary_dim=8, eps=1e-6, scale=1.0, activation="silu",
                                      cache=KVCache(1, 1, 2, 8, 4))
    with pytest.raises(ValueError, match="rows, more than"):
        native_llama.RMSNativeDecoder(embed=embed, layers=layers, norm=embed[0], head_weight=embed, heads=2,
                                      kv_heads=2, head_dim=8, rotary_dim=8, eps=1e-6, scale=1.0, activation="silu",
                                      cache=KVCache(1, 9, 2, 8, 4))


def test_out_of_range_token_is_an_error_not_a_read_out_of_bounds():
    layers = make_layers(torch.float32, 1, 16, 2, 2, 8, 24, False, False, 0)
    embed = torch.zeros(10, 16)
    step = native_llama.RMSNativeDecoder(embed=embed, layers=layers, norm=embed[0] + 1, head_weight=embed, heads=2,
                                         kv_heads=2, head_dim=8, rotary_dim=8, eps=1e-6, scale=1.0,
                                         activation="silu", cache=KVCache(1, 1, 2, 8, 4))
    with pytest.raises(IndexError, match="out of range"):
        step(torch.tensor([10]), torch.ones(1, 8), torch.zeros(1, 8))
