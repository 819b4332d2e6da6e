"""zoo.layers.attention: the sliding-window mask against transformers' masking_utils, and GroupedQueryAttention's
paths against each other and against transformers' eager attention.

- :func:`sliding_window_mask` over every mask zoo builds (none and SDPA's causal flag, a causal (T, S) mask after a
  cache, a padded (B, 1, T, S) mask, generate's 4D boolean masks, an additive mask) must allow exactly what
  transformers' ``sliding_window_causal_mask_function`` and ``padding_mask_function`` allow at the same indices.
- ``enable_gqa=True`` (zoo's choice) equals repeating the key/value heads, masked and not, in float32 and bfloat16.
- The explicit ``output_attentions`` path equals the SDPA path, and both equal transformers' ``eager_attention_forward``
  on the same projections, with partial rotary (GPT-NeoX's ``apply_rotary_pos_emb``) and with Qwen3's q/k norm.
  Partial rotary is tested here because none of the four Llama-family transformers classes applies it.
- Keys and values written through a KVCache step by step give what one pass gives.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import masking_utils
from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb as hf_apply_partial
from transformers.models.llama.modeling_llama import eager_attention_forward

from zoo.generation import KVCache, causal_attention_mask
from zoo.layers import GroupedQueryAttention, RMSNorm, RotaryEmbedding, sliding_window_mask

ATOL = RTOL = 1e-5


def materialise(mask: torch.Tensor | None, is_causal: bool, q_len: int, kv_len: int, batch: int) -> torch.Tensor:
    """What SDPA allows under ``(mask, is_causal)``, as a boolean (B, T, S)."""
    if is_causal:
        assert mask is None
        mask = torch.ones(q_len, kv_len, dtype=torch.bool).tril(diagonal=kv_len - q_len)
    if mask is None:
        return torch.ones(batch, q_len, kv_len, dtype=torch.bool)
    if mask.dtype != torch.bool:
        mask = mask == 0
    return mask.expand(batch, 1, q_len, kv_len)[:, 0] if mask.dim() == 4 else mask.expand(batch, q_len, kv_len)


def transformers_allows(padding: torch.Tensor, q_len: int, window: int) -> torch.Tensor:
    """transformers' sliding-window causal mask with padding, evaluated at every (batch, query, key) index."""
    batch, kv_len = padding.shape
    function = masking_utils.and_masks(masking_utils.sliding_window_causal_mask_function(window),
                                       masking_utils.padding_mask_function(padding.bool()))
    b = torch.arange(batch)[:, None, None]
    q = torch.arange(kv_len - q_len, kv_len)[None, :, None]
    kv = torch.arange(kv_len)[None, None, :]
    return function(b, 0, q, kv).expand(batch, q_len, kv_len)


def padding(batch: int, kv_len: int, padded: bool) -> torch.Tensor:
    mask = torch.ones(batch, kv_len, dtype=torch.long)
    if padded:
        mask[1, :3] = 0
        mask[2, : kv_len - 1] = 0
    return mask


@pytest.mark.parametrize("window", [1, 3, 4, 20])
@pytest.mark.parametrize(("q_len", "past"), [(9, 0), (1, 8), (4, 5)], ids=["prompt", "step", "chunk"])
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_sliding_window_matches_transformers_masking_utils(window, q_len, past, padded):
    kv_len = q_len + past
    pad = padding(3, kv_len, padded)
    mask, is_causal = causal_attention_mask(pad, q_len, past)
    got = sliding_window_mask(mask, is_causal, q_len, kv_len, window)
    assert torch.equal(materialise(*got, q_len, kv_len, 3), transformers_allows(pad, q_len, window))
    if window >= kv_len:  # nothing to narrow: the arguments come back, no tensor built
        assert got[0] is mask and got[1] == is_causal


@pytest.mark.parametrize("window", [2, 5])
def test_sliding_window_narrows_generates_4d_masks_and_additive_masks(window):
    """generate passes boolean (B, 1, L, L) prompt masks and (B, 1, 1, cur) step masks; an additive mask keeps its
    dtype, the window's positions set to the dtype's lowest value."""
    pad = padding(3, 10, True)
    prompt, _ = causal_attention_mask(pad[:, :9], 9, 0)
    step = pad.bool()[:, None, None, :]  # (B, 1, 1, 10): the 10th position is the new token
    for mask, q_len, kv_len in ((prompt, 9, 9), (step, 1, 10)):
        got, is_causal = sliding_window_mask(mask, False, q_len, kv_len, window)
        assert not is_causal and got.shape == (3, 1, q_len, kv_len)
        expected = transformers_allows(pad[:, :kv_len], q_len, window)
        assert torch.equal(materialise(got, False, q_len, kv_len, 3), expected)
        additive = torch.zeros(mask.shape, dtype=torch.bfloat16).masked_fill(~mask, torch.finfo(torch.bfloat16).min)
        narrowed, _ = sliding_window_mask(additive, False, q_len, kv_len, window)
        assert narrowed.dtype == torch.bfloat16
        assert torch.equal(materialise(narrowed, False, q_len, kv_len, 3), expected)


def test_sliding_window_refuses_a_mask_of_another_length():
    with pytest.raises(ValueError, match="covers 6 key positions but there are 9"):
        sliding_window_mask(torch.ones(1, 1, 1, 6, dtype=torch.bool), False, 1, 9, 4)


# --- grouped heads -----------------------------------------------------------------------------------------------------


def repeat_kv(t: torch.Tensor, groups: int) -> torch.Tensor:
    B, H, S, D = t.shape
    return t[:, :, None].expand(B, H, groups, S, D).reshape(B, H * groups, S, D)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("groups", [2, 8])
@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_enable_gqa_equals_repeated_key_value_heads(dtype, groups, masked):
    """Why zoo passes enable_gqa=True: the same numbers as transformers' repeat_kv, without the copies."""
    generator = torch.Generator().manual_seed(groups)
    q = torch.randn(2, 8, 5, 16, generator=generator).to(dtype)
    k, v = (torch.randn(2, 8 // groups, 7, 16, generator=generator).to(dtype) for _ in range(2))
    mask = causal_attention_mask(padding(3, 7, True)[1:], 5, 2)[0] if masked else None
    grouped = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    repeated = F.scaled_dot_product_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), attn_mask=mask)
    torch.testing.assert_close(grouped, repeated, atol=0, rtol=0)


class _Config:
    """The fields RotaryEmbedding reads."""

    def __init__(self, head_dim: int, partial: float) -> None:
        self.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": partial}
        self.head_dim, self.max_position_embeddings = head_dim, 64


def attention(groups: int, qk_norm: bool, bias: bool, head_dim: int = 16) -> GroupedQueryAttention:
    torch.manual_seed(groups)
    module = GroupedQueryAttention(32, 8, 8 // groups, head_dim, 0, qkv_bias=bias, o_bias=bias,
                                   qk_norm_eps=1e-6 if qk_norm else None).eval()
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(1 + 0.3 * torch.randn(param.shape) if "norm" in name else 0.3 * torch.randn(param.shape))
    return module


def transformers_reference(module: GroupedQueryAttention, x, cos, sin, mask):
    """The same projections through transformers' pieces: GPT-NeoX's rotary (partial-aware), Llama's eager attention."""
    B, T, _ = x.shape
    q = module.q_proj(x).view(B, T, -1, module.head_dim)
    k = module.k_proj(x).view(B, T, -1, module.head_dim)
    v = module.v_proj(x).view(B, T, -1, module.head_dim).transpose(1, 2)
    if module.q_norm is not None:
        q, k = module.q_norm(q), module.k_norm(k)
    q, k = hf_apply_partial(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
    additive = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)

    class Owner(torch.nn.Module):
        num_key_value_groups = module.num_key_value_groups

    y, weights = eager_attention_forward(Owner().eval(), q, k, v, additive, scaling=module.scaling)
    return module.o_proj(y.reshape(B, T, -1)), weights


@pytest.mark.parametrize("partial", [1.0, 0.5, 0.25])
@pytest.mark.parametrize(("groups", "qk_norm", "bias"), [(1, False, True), (2, True, False), (8, True, True)])
def test_attention_paths_equal_transformers_eager(partial, groups, qk_norm, bias):
    module = attention(groups, qk_norm, bias)
    rope = RotaryEmbedding(_Config(16, partial))
    x = torch.randn(3, 7, 32, generator=torch.Generator().manual_seed(5))
    pad = padding(3, 7, True)
    positions = (pad.cumsum(-1) - 1).clamp(min=0)
    cos, sin = rope(x, positions)
    assert cos.shape[-1] == int(16 * partial)
    mask, is_causal = sliding_window_mask(*causal_attention_mask(pad, 7, 0), 7, 7, 4)
    with torch.no_grad():
        expected, expected_weights = transformers_reference(module, x, cos, sin, mask)
        fast, none = module(x, (cos, sin), mask, is_causal)
        explicit, weights = module(x, (cos, sin), mask, is_causal, output_attentions=True)
    assert none is None and weights.shape == (3, 8, 7, 7)
    real = pad.bool()  # a padding query sees no key: SDPA gives zeros there, eager attention an even spread
    torch.testing.assert_close(fast[real], expected[real], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(explicit, expected, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(weights, expected_weights, atol=ATOL, rtol=RTOL)


def test_explicit_path_with_sdpas_causal_flag_and_no_mask():
    module = attention(2, False, False)
    rope = RotaryEmbedding(_Config(16, 1.0))
    x = torch.randn(1, 6, 32, generator=torch.Generator().manual_seed(6))
    cos, sin = rope(x, torch.arange(6)[None])
    with torch.no_grad():
        fast, _ = module(x, (cos, sin), None, True)
        explicit, weights = module(x, (cos, sin), None, True, output_attentions=True)
    torch.testing.assert_close(explicit, fast, atol=ATOL, rtol=RTOL)
    assert torch.equal(weights[0, 0] > 0, torch.ones(6, 6, dtype=torch.bool).tril())


def test_cached_steps_equal_one_pass():
    """Through a KVCache of the key/value heads: a 3-token chunk, then single tokens (no mask, as generate without
    padding), each with its window; the same outputs as the whole sequence at once."""
    module = attention(4, True, True)
    rope = RotaryEmbedding(_Config(16, 0.5))
    x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(7))
    window = 3
    with torch.no_grad():
        cos, sin = rope(x, torch.arange(7)[None])
        full, _ = module(x, (cos, sin), *sliding_window_mask(None, True, 7, 7, window))
        cache = KVCache(1, 2, 2, 16, 2)  # 2 key/value heads; a capacity that must grow
        pieces = []
        for start, end in ((0, 3), (3, 4), (4, 5), (5, 7)):
            mask, is_causal = causal_attention_mask(None, end - start, start)
            mask, is_causal = sliding_window_mask(mask, is_causal, end - start, end, window)
            out, _ = module(x[:, start:end], (cos[:, start:end], sin[:, start:end]), mask, is_causal, cache)
            cache.advance(end - start)
            pieces.append(out)
    assert cache.length == 7 and cache.keys[0].shape[1] == 2
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=ATOL, rtol=RTOL)


def test_names_and_refusals():
    module = attention(2, True, False)
    names = [name for name, _ in module.named_parameters()]
    assert names == ["q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "q_norm.weight",
                     "k_norm.weight"]
    assert isinstance(module.q_norm, RMSNorm) and module.q_norm.weight.shape == (16,)
    with pytest.raises(ValueError, match="8 query heads cannot be grouped over 3"):
        GroupedQueryAttention(32, 8, 3, 4, 0)
