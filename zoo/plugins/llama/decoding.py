"""The decoding step of the Llama family for ``generate``: one new token per row through zoo's native kernel.

At batch 1 a decoding step reads every weight once, so its speed is the rate at which the weights stream from
memory. The forward pass runs ~40 small ops a layer, each its own parallel region, and PyTorch's bf16 matrix-vector
products run the largest matrices on one core; :class:`LlamaNativeDecodingStep` runs the whole step, every layer and
the output embedding, in one call of zoo/native/decode_llama.c, over the model's own parameters (no copy), in
float32 or bfloat16 (the bf16 weights stream at half the bytes; benchmarks/bench_llama.py measures it against the
machine's bandwidth). The rotary tables of the step's positions come from the model's own RotaryEmbedding, so every
rope scaling is computed exactly as the forward pass computes it. Where the kernel cannot run (a GPU, training,
forward hooks, float16, more rows than it takes, or no compiler at install time), ``decoding_step`` returns None
and generation calls the forward pass, the plain PyTorch path.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from zoo.generation import KVCache, has_forward_hooks
from zoo.native import llama as native

logger = logging.getLogger(__name__)


def native_decoding_step(model: Any, cache: KVCache) -> LlamaNativeDecodingStep | None:
    """The native step for ``model`` (a LlamaForCausalLM or family subclass) over ``cache``, or None where it cannot
    compute exactly what the forward pass does (then generation uses the forward pass): the kernel reads float
    weights, so an int8 model (zoo/quantization.py) decodes through the forward pass too."""
    weight = getattr(model.lm_head, "weight", None)
    if (getattr(model, "quantization", None) is not None or weight is None or model.training
            or weight.device.type != "cpu" or weight.dtype not in (torch.float32, torch.bfloat16)
            or not native.available() or has_forward_hooks(model) or not cache.keys or cache.keys[0].shape[0] > native.MAX_ROWS
            or model.config.hidden_act not in native.ACTIVATIONS):
        return None
    try:
        return LlamaNativeDecodingStep(model, cache)
    except ValueError as exc:  # a layout or dtype the kernel does not read: the forward pass computes it
        logger.debug("decoding through the forward pass: %s", exc)
        return None


class LlamaNativeDecodingStep:
    """One new token per row through the native kernel: the forward pass's maths, the kernel's loop."""

    def __init__(self, model: Any, cache: KVCache) -> None:
        body, config = model.model, model.config
        self.cache = cache
        self.rotary = body.rotary_emb
        self.dtype = body.embed_tokens.weight.dtype
        # rope types whose frequencies never change: every position's cos/sin made once per generate call (what
        # forward computes for each position alone, so the rows are the same values), looked up at each step
        self.tables: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.rotary.rope_type not in ("dynamic", "longrope"):
            positions = torch.arange(cache.capacity, device=self.rotary.inv_freq.device)[None]  # (1, capacity)
            cos, sin = self.rotary.cos_sin(positions, dtype=self.dtype)  # (1, capacity, R) each
            self.tables = (cos[0].float(), sin[0].float())
        layers = [self.layer_weights(layer) for layer in body.layers]
        attn = body.layers[0].self_attn
        self.kernel = native.RMSNativeDecoder(
            embed=body.embed_tokens.weight.detach(), layers=layers, norm=body.norm.weight.detach(),
            head_weight=model.lm_head.weight.detach(), heads=attn.num_heads, kv_heads=attn.num_key_value_heads,
            head_dim=attn.head_dim, rotary_dim=self.rotary.rotary_dim, eps=body.norm.eps, scale=attn.scaling,
            activation=config.hidden_act, cache=cache)

    @staticmethod
    def layer_weights(layer: Any) -> native.RMSLayerWeights:
        """One decoder layer's parameters as the kernel reads them (the tensors themselves, nn.Linear layouts)."""
        attn, mlp = layer.self_attn, layer.mlp

        def t(module: Any, name: str = "weight") -> torch.Tensor | None:
            value = getattr(module, name, None) if module is not None else None
            return value.detach() if value is not None else None

        if attn.q_norm is not None and attn.q_norm.eps != layer.input_layernorm.eps:
            raise ValueError("the q/k norms use another epsilon than the layer norms")
        return native.RMSLayerWeights(
            t(layer.input_layernorm), t(attn.q_proj), t(attn.q_proj, "bias"), t(attn.k_proj), t(attn.k_proj, "bias"),
            t(attn.v_proj), t(attn.v_proj, "bias"), t(attn.q_norm), t(attn.k_norm), t(attn.o_proj),
            t(attn.o_proj, "bias"), t(layer.post_attention_layernorm), t(mlp.gate_proj), t(mlp.gate_proj, "bias"),
            t(mlp.up_proj), t(mlp.up_proj, "bias"), t(mlp.down_proj), t(mlp.down_proj, "bias"),
            layer.sliding_window or 0)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids`` (B, 1) -> next-token logits (B, V) float32; ``attention_mask``: None or boolean
        (B, 1, 1, past + 1); ``position_ids``: None (the cached length) or (B, 1)."""
        cache = self.cache
        if position_ids is None:
            position_ids = torch.full((input_ids.shape[0], 1), cache.length, dtype=torch.long)
        positions = position_ids[:, 0]  # (B,)
        if self.tables is not None and int(positions.max()) < self.tables[0].shape[0]:
            cos, sin = self.tables[0][positions], self.tables[1][positions]  # (B, R)
        else:  # the model's own rotary module (dynamic / longrope update included), in the model's dtype
            cos, sin = self.rotary(self.rotary.inv_freq.new_empty(0, dtype=self.dtype), position_ids)  # (B, 1, R)
            cos, sin = cos[:, 0], sin[:, 0]
        logits = self.kernel(input_ids[:, 0], cos, sin, attention_mask)  # (B, V)
        cache.advance(1)
        return logits
