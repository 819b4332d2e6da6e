"""Grouped-query causal self-attention with rotary positions, over zoo.generation's key/value cache.

Grouped-query attention (Ainslie et al. 2023, "GQA", arXiv:2305.13245) lets ``num_key_value_heads`` key/value heads
each serve ``num_heads / num_key_value_heads`` query heads (1: multi-head; ``num_heads``: multi-query). The module
is transformers' ``LlamaAttention`` (models/llama/modeling_llama.py) with the variants the Llama family adds as
options: biases on q/k/v (Qwen2) or on all four projections (``attention_bias``), an RMSNorm over each query and key
head before the rotation (Qwen3's ``q_norm`` / ``k_norm``), and a sliding window (Mistral, Qwen2), which is a mask:
:func:`sliding_window_mask` narrows whatever mask the model built, and the model hands each layer its own.

Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` with ``enable_gqa=True``: SDPA reads
each key/value head for its group of query heads, where transformers' eager path first copies them ``groups`` times
(``repeat_kv``). On CPU in torch 2.13 the two agree bit for bit, masked or not, and the grouped read is faster
(1 query over 512 cached positions, 32/8 heads of 128: 0.22 ms against 0.7-0.95 ms; batch 4: 1.1-1.6 ms against
27 ms). ``output_attentions`` takes an explicit path that returns the weights, computed as transformers' eager
attention computes them (scores in the input dtype, softmax in float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.generation import KVCache
from zoo.layers.linear import Linear, add_into, project
from zoo.native import ops
from zoo.layers.norm import RMSNorm
from zoo.layers.rotary import apply_rotary

__all__ = ["GroupedQueryAttention", "sliding_window_mask"]


def sliding_window_mask(mask: torch.Tensor | None, is_causal: bool, q_len: int, kv_len: int, window: int | None,
                        device: torch.device | None = None) -> tuple[torch.Tensor | None, bool]:
    """Narrow the SDPA arguments ``(mask, is_causal)`` of ``q_len`` queries over ``kv_len`` keys (the last ``q_len``
    of them new) to a sliding window of ``window`` positions.

    transformers' semantics (masking_utils.py ``sliding_window_overlay``): the query at cache index ``i`` sees the
    keys at ``i - window < j <= i``, itself and the ``window - 1`` before it, counted in cache positions (padding
    included), on top of the causal and padding masks. ``mask`` is None, a boolean mask (True = attend: (T, S), or
    (B, 1, T, S) as generate passes it) or an additive one. Nothing is built while every key is within the window
    (``kv_len <= window``): the arguments come back as they are.
    """
    if window is None or kv_len <= window:
        return mask, is_causal
    if mask is not None and mask.shape[-1] != kv_len:
        raise ValueError(f"the attention mask covers {mask.shape[-1]} key positions but there are {kv_len} (cached and "
                         f"new); pass a mask over every cached and new position")
    device = mask.device if mask is not None else device
    keys = torch.arange(kv_len, device=device)  # (S,)
    queries = torch.arange(kv_len - q_len, kv_len, device=device)[:, None]  # (T, 1): cache index of each query
    band = keys > queries - window  # (T, S)
    if mask is None:
        return (band & (keys <= queries) if is_causal else band), False
    if mask.dtype == torch.bool:
        return mask & band, False  # (B, 1, T, S) or (T, S)
    return mask.masked_fill(~band, torch.finfo(mask.dtype).min), False


class GroupedQueryAttention(nn.Module):
    """Causal self-attention of ``num_heads`` query heads over ``num_key_value_heads`` key/value heads.

    Parameters are named as in the published checkpoints: ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` and, with
    ``qk_norm_eps``, ``q_norm`` / ``k_norm`` (one RMSNorm of ``head_dim`` channels, shared by every head).
    """

    def __init__(self, hidden_size: int, num_heads: int, num_key_value_heads: int, head_dim: int, layer_idx: int, *,
                 qkv_bias: bool = False, o_bias: bool = False, qk_norm_eps: float | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if num_heads % num_key_value_heads:
            raise ValueError(f"{num_heads} query heads cannot be grouped over {num_key_value_heads} key/value heads; "
                             f"num_attention_heads must be a multiple of num_key_value_heads")
        self.num_heads, self.num_key_value_heads, self.head_dim = num_heads, num_key_value_heads, head_dim
        self.num_key_value_groups = num_heads // num_key_value_heads
        self.layer_idx = layer_idx
        self.scaling = head_dim**-0.5
        self.dropout = dropout
        self.q_proj = Linear(hidden_size, num_heads * head_dim, bias=qkv_bias)
        self.k_proj = Linear(hidden_size, num_key_value_heads * head_dim, bias=qkv_bias)
        self.v_proj = Linear(hidden_size, num_key_value_heads * head_dim, bias=qkv_bias)
        self.o_proj = Linear(num_heads * head_dim, hidden_size, bias=o_bias)
        self.q_norm = RMSNorm(head_dim, qk_norm_eps) if qk_norm_eps is not None else None
        self.k_norm = RMSNorm(head_dim, qk_norm_eps) if qk_norm_eps is not None else None

    def forward(self, x: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None, is_causal: bool, cache: KVCache | None = None,
                output_attentions: bool = False, residual: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` (B, T, C), ``position_embeddings`` the rotary ``(cos, sin)`` of its positions, ``mask`` /
        ``is_causal`` SDPA's arguments for this layer (window included); the new keys/values go into ``cache``.
        Returns the output (B, T, C), plus ``residual`` when given, and, with ``output_attentions``, the weights
        (B, heads, T, past + T)."""
        B, T, _ = x.shape
        q, k, v = project(x, self.q_proj, self.k_proj, self.v_proj)  # one product where it can be
        q = q.view(B, T, self.num_heads, self.head_dim)  # (B, T, Hq, D)
        k = k.view(B, T, self.num_key_value_heads, self.head_dim)  # (B, T, Hk, D)
        v = v.view(B, T, self.num_key_value_heads, self.head_dim).transpose(1, 2)  # (B, Hk, T, D)
        if self.q_norm is not None and self.k_norm is not None:  # Qwen3: each head normalised, before rotation
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self._rotate(q, k, *position_embeddings)  # (B, H, T, D)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, Hk, S, D): past + new
        dropout = self.dropout if self.training else 0.0
        if output_attentions:
            y, weights = self._explicit_attention(q, k, v, mask, is_causal, dropout)
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=is_causal,
                                               scale=self.scaling,
                                               enable_gqa=self.num_key_value_groups > 1)  # (B, Hq, T, D)
        return add_into(self.o_proj, y.transpose(1, 2).reshape(B, T, -1), residual), weights  # (B, T, C)

    @staticmethod
    def _rotate(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Heads (B, T, H, D) rotated into attention's (B, H, T, D): one pass of zoo.native.ops each (read in
        place from the fused projection), else apply_rotary."""
        fused_q = ops.rotary(q, cos, sin)
        fused_k = ops.rotary(k, cos, sin) if fused_q is not None else None
        if fused_q is not None and fused_k is not None:
            return fused_q, fused_k
        return apply_rotary(q.transpose(1, 2), k.transpose(1, 2), cos, sin)

    def _explicit_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                            is_causal: bool, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention with its weights, as transformers' ``eager_attention_forward``: key/value heads repeated for
        their groups, scores in the input dtype, softmax in float32."""
        T, S = q.shape[2], k.shape[2]
        if self.num_key_value_groups > 1:
            k = k.repeat_interleave(self.num_key_value_groups, dim=1)  # (B, Hq, S, D)
            v = v.repeat_interleave(self.num_key_value_groups, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling  # (B, Hq, T, S)
        if is_causal:
            mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
        if mask is not None:
            lowest = torch.finfo(scores.dtype).min
            scores = scores.masked_fill(~mask, lowest) if mask.dtype == torch.bool else scores + mask
        weights = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)  # (B, Hq, T, S)
        if dropout:
            weights = F.dropout(weights, dropout, training=True)
        return torch.matmul(weights, v), weights  # (B, Hq, T, D)
