"""The decoding step of T5-style decoders for ``generate``: one new token per row through zoo's native kernel.

At batch 1 a decoding step of t5-small reads ~150 MB of weights, a few milliseconds of this machine's memory
bandwidth, while the forward pass runs ~60 small ops a decoder layer, each its own parallel region, and spends more
than that on their bookkeeping. :class:`T5NativeDecodingStep` runs the whole step (self-attention with the relative
position bias, cross-attention over the keys/values the first decoder pass computed, the MLP, the output
embedding) in one call of zoo/native/decode_t5.c, over the model's own float32 parameters (no copy;
benchmarks/bench_t5.py measures it). The position bias is computed here with the model's own bucketing and bias
embedding, once per ``generate`` call, so the kernel only adds it. Where the kernel cannot run (a GPU, training,
forward hooks, half precision, more rows than it takes, or no compiler at install time), ``native_decoding_step``
returns None and generation calls the forward pass, the plain PyTorch path.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from zoo.generation import has_forward_hooks
from zoo.native import t5 as native

logger = logging.getLogger(__name__)

__all__ = ["T5NativeDecodingStep", "native_decoding_step"]


def native_decoding_step(model: Any, cache: Any) -> T5NativeDecodingStep | None:
    """The native step for ``model`` (a T5ForConditionalGeneration or family subclass) over its T5Cache, once the
    first decoder pass has filled the cross-attention keys/values; None where it cannot compute exactly what the
    forward pass does (then generation uses the forward pass)."""
    weight = getattr(model.lm_head, "weight", None)
    decoder = model.decoder
    if (getattr(model, "quantization", None) is not None or not isinstance(weight, torch.Tensor) or model.training
            or weight.device.type != "cpu" or weight.dtype != torch.float32 or not native.available()
            or has_forward_hooks(model) or not cache.keys or cache.keys[0].shape[0] > native.MAX_ROWS
            or len(getattr(cache, "cross", ())) != len(decoder.block)
            or model.config.dense_act_fn not in native.ACTIVATIONS):
        return None
    try:
        return T5NativeDecodingStep(model, cache)
    except ValueError as exc:  # a layout or dtype the kernel does not read: the forward pass computes it
        logger.debug("decoding through the forward pass: %s", exc)
        return None


class T5NativeDecodingStep:
    """One new token per row through the native kernel: the forward pass's maths, the kernel's loop."""

    def __init__(self, model: Any, cache: Any) -> None:
        decoder, config = model.decoder, model.config
        self.cache = cache
        self.attentions = [block.layer[0].SelfAttention for block in decoder.block]
        attn = self.attentions[0]
        self.kernel = native.T5NativeDecoder(
            embed=decoder.embed_tokens.weight.detach(), layers=[self.layer_weights(b) for b in decoder.block],
            norm=decoder.final_layer_norm.weight.detach(), head_weight=model.lm_head.weight.detach(),
            heads=attn.n_heads, d_kv=attn.d_kv, eps=decoder.final_layer_norm.variance_epsilon,
            out_scale=config.d_model**-0.5 if config.scale_decoder_outputs else 1.0, activation=config.dense_act_fn,
            bias=self.bias_tables, cache=cache)

    def bias_tables(self, capacity: int) -> list[torch.Tensor]:
        """Per layer, the ``(heads, capacity)`` self-attention bias of keys 0..capacity-1 positions before the
        query, reversed (what the forward pass's ``compute_bias`` gives a query at position capacity - 1); layers
        without their own bias embedding share layer 0's, as in the forward pass."""
        tables: list[torch.Tensor] = []
        for attn in self.attentions:
            if not attn.has_relative_attention_bias:
                tables.append(tables[0])
                continue
            with torch.no_grad():
                bias = attn.compute_bias(1, capacity, capacity - 1, attn.q.weight.device)  # (1, H, 1, capacity)
            tables.append(bias[0, :, 0].float().contiguous())  # (H, capacity)
        return tables

    @staticmethod
    def layer_weights(block: Any) -> native.T5LayerWeights:
        """One decoder block's parameters as the kernel reads them (the tensors themselves, nn.Linear layouts)."""
        self_attn, cross, ff = block.layer[0], block.layer[1], block.layer[-1]
        mlp = ff.DenseReluDense
        gated = hasattr(mlp, "wi_0")
        return native.T5LayerWeights(
            self_attn.layer_norm.weight.detach(), self_attn.SelfAttention.q.weight.detach(),
            self_attn.SelfAttention.k.weight.detach(), self_attn.SelfAttention.v.weight.detach(),
            self_attn.SelfAttention.o.weight.detach(), cross.layer_norm.weight.detach(),
            cross.EncDecAttention.q.weight.detach(), cross.EncDecAttention.o.weight.detach(),
            ff.layer_norm.weight.detach(), (mlp.wi_0 if gated else mlp.wi).weight.detach(),
            mlp.wi_1.weight.detach() if gated else None, mlp.wo.weight.detach())

    def __call__(self, decoder_input_ids: torch.Tensor, encoder_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``decoder_input_ids`` (B, 1) -> next-token logits (B, V) float32; ``encoder_mask``: None or boolean
        ``(B, S_enc)`` over the encoder positions (True = attend)."""
        logits = self.kernel(decoder_input_ids[:, 0], encoder_mask)  # (B, V)
        self.cache.advance(1)
        return logits
