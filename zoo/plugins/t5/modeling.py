"""T5 (Raffel et al. 2020, arXiv:1910.10683), mT5 and umT5, top to bottom: norm -> relative positions -> attention
-> MLP -> block -> stack -> models -> heads.

Module and parameter names are the published checkpoint keys (transformers' models/t5/modeling_t5.py), so
``encoder.block.0.layer.0.SelfAttention.q.weight`` is that very tensor here. How T5 differs from BERT/GPT-2:

- pre-norm blocks with an RMS layer norm (no mean, no bias, statistics in float32) and a final norm per stack;
- no position embeddings: a learned bias per head and *relative position bucket* is added to the attention
  scores (bidirectional buckets in the encoder, causal ones in the decoder); T5 and mT5 compute it in the first
  layer of each stack and share it with the others, umT5 gives every self-attention layer its own; cross-attention
  has none. The scores are not scaled by 1/sqrt(d_kv) (the initialisation absorbs it);
- an MLP of ``wi -> act -> wo`` or, with ``gated-*``, ``act(wi_0) * wi_1 -> wo``; in float16 every sub-layer's output
  is clamped below the float16 maximum, as published checkpoints (trained in bfloat16) need;
- the encoder's and decoder's ``embed_tokens`` are the ``shared`` embedding; ``lm_head`` is too when
  ``tie_word_embeddings``, and then (``config.scale_decoder_outputs``) the decoder output is scaled by d_model**-0.5.

``T5ForConditionalGeneration.generate`` (zoo.generation's Seq2SeqRunner) drives this interface:

- ``model.get_encoder()(input_ids, attention_mask)`` runs the encoder once; pass its output as ``encoder_outputs=``;
- ``model.new_kv_cache(batch_size, capacity)`` is a :class:`T5Cache`: a :class:`~zoo.generation.KVCache` for the
  decoder's self-attention (``update`` / ``advance`` / ``reorder`` as for GPT-2 and Llama) that also keeps each
  decoder layer's cross-attention keys and values, computed from the encoder output on the first call and reused
  after; ``reorder`` (beam search) reorders both;
- ``model(encoder_outputs=..., attention_mask=encoder_mask, decoder_input_ids=new_ids, past_key_values=cache)``
  feeds the new decoder positions only (relative positions count from ``cache.length``) and returns their logits
  and the cache, advanced; ``decoder_attention_mask``, when given, covers past and new decoder positions; after the
  first call, ``decoding_step`` runs whole steps in zoo's native kernel (zoo/plugins/t5/decoding.py).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from zoo.activations import get_activation
from zoo.generation import GenerationMixin
from zoo.generation.cache import KVCache, forward_cache
from zoo.layers import Linear, project
from zoo.modeling import GradientCheckpointingLayer, PreTrainedModel, classification_loss, span_loss
from zoo.outputs import (BaseModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput, Seq2SeqQuestionAnsweringModelOutput,
                         Seq2SeqSequenceClassifierOutput)
from zoo.plugins.t5.config import MT5Config, T5Config, UMT5Config
from zoo.plugins.t5.decoding import T5NativeDecodingStep, native_decoding_step

# --- the cache ---------------------------------------------------------------------------------------------------------


class T5Cache(KVCache):
    """The decoder's cache: self-attention keys/values as :class:`KVCache` keeps them, plus ``cross``, one
    ``(keys, values)`` pair of ``(B, heads, S_enc, d_kv)`` per decoder layer, filled by the first forward pass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cross: list[tuple[torch.Tensor, torch.Tensor]] = []

    def reorder(self, index: torch.Tensor) -> None:
        super().reorder(index)
        if self.cross:
            index = index.to(device=self.cross[0][0].device, dtype=torch.long)
            self.cross = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.cross]

    def reorder_self_attention(self, index: torch.Tensor) -> None:
        """:meth:`reorder` of the self-attention rows alone, the cross-attention ones left as they are: what a beam
        step needs, where rows move only among the beams of one input, whose cross-attention rows are all that
        input's encoder output (generate's Seq2SeqRunner.reorder; t5-small, 4 beams: 6 MB less copied a step)."""
        super().reorder(index)


# --- norm, MLP ---------------------------------------------------------------------------------------------------------


def clamp_fp16(h: torch.Tensor) -> torch.Tensor:
    """Keep float16 activations finite, as transformers does after each sub-layer (a no-op in other dtypes)."""
    if h.dtype != torch.float16:
        return h
    largest = torch.finfo(h.dtype).max
    value = torch.where(torch.isinf(h).any(), largest - 1000, largest)
    return torch.clamp(h, min=-value, max=value)


class T5LayerNorm(nn.Module):
    """RMS norm as T5 computes it: the mean square in float32, the input multiplied in float32 and cast back only to
    a half-precision weight's dtype (unlike zoo.layers.RMSNorm, which casts before the weight multiplies)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)  # (..., 1)
        x = x * torch.rsqrt(variance + self.variance_epsilon)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


class T5DenseActDense(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.wi = Linear(config.d_model, config.d_ff, bias=False)
        self.wo = Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act_name = config.dense_act_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.wi(x, activation=self.act_name))  # (B, T, d_ff)
        return self.wo(_to_weight_dtype(h, self.wo))  # (B, T, d_model)


class T5DenseGatedActDense(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.wi_0 = Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = Linear(config.d_model, config.d_ff, bias=False)
        self.wo = Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = project(x, self.wi_0, self.wi_1)  # (B, T, d_ff) each
        h = self.dropout(self.act(gate) * up)
        return self.wo(_to_weight_dtype(h, self.wo))  # (B, T, d_model)


def _to_weight_dtype(h: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    # transformers keeps ``wo`` in float32 for half-precision T5 (flan-t5-xxl overflows otherwise): follow its dtype
    w = linear.weight
    return h.to(w.dtype) if isinstance(w, torch.Tensor) and w.dtype not in (h.dtype, torch.int8) else h


class T5LayerFF(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(config) if config.is_gated_act else T5DenseActDense(config)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.DenseReluDense(self.layer_norm(x)))  # (B, T, d_model)


# --- relative positions and attention ----------------------------------------------------------------------------------


def relative_position_bucket(relative_position: torch.Tensor, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> torch.Tensor:
    """Mesh TensorFlow's buckets: exact for small distances, logarithmic up to ``max_distance``, then one bucket;
    bidirectional (encoder) uses half the buckets per direction, causal (decoder) only looks back."""
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).to(torch.long) * num_buckets
        relative_position = relative_position.abs()
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, relative_position, large)


class T5Attention(nn.Module):
    """Multi-head attention without score scaling; ``relative_attention_bias`` on the layers that compute a bias."""

    def __init__(self, config: T5Config, has_relative_attention_bias: bool, is_decoder: bool) -> None:
        super().__init__()
        self.n_heads, self.d_kv = config.num_heads, config.d_kv
        inner = config.num_heads * config.d_kv
        self.q = Linear(config.d_model, inner, bias=False)
        self.k = Linear(config.d_model, inner, bias=False)
        self.v = Linear(config.d_model, inner, bias=False)
        self.o = Linear(inner, config.d_model, bias=False)
        self.is_decoder = is_decoder
        self.has_relative_attention_bias = has_relative_attention_bias
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, config.num_heads)
        self.dropout_p = config.dropout_rate

    def compute_bias(self, q_len: int, k_len: int, past: int, device: torch.device) -> torch.Tensor:
        """(1, heads, q_len, k_len) bias of query positions ``past .. past + q_len`` against keys ``0 .. k_len``."""
        context = torch.arange(q_len, dtype=torch.long, device=device)[:, None] + past
        memory = torch.arange(k_len, dtype=torch.long, device=device)[None, :]
        bucket = relative_position_bucket(memory - context, not self.is_decoder, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(bucket).permute(2, 0, 1).unsqueeze(0)  # (1, H, T, S)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(t.shape[0], t.shape[1], self.n_heads, self.d_kv).transpose(1, 2)  # (B, H, T, d_kv)

    def encoder_keys_values(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values ``(B, H, S, d_kv)`` of the encoder output ``states`` (B, S, d_model)."""
        k, v = (self._heads(t) for t in project(states, self.k, self.v))
        return k, v

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None, key_value_states: torch.Tensor | None = None,
                cache: T5Cache | None = None, layer_idx: int = 0) -> torch.Tensor:
        """``bias``: the additive (bias + mask) scores term, broadcastable to (B, H, T, S), or None."""
        B, T, _ = x.shape
        if key_value_states is None:  # self-attention: new keys/values appended to the cache
            q, k, v = (self._heads(t) for t in project(x, self.q, self.k, self.v))
            if cache is not None:
                k, v = cache.update(layer_idx, k, v)  # (B, H, past + T, d_kv)
        else:  # cross-attention: keys/values of the encoder output, once per cache
            q = self._heads(self.q(x))
            if cache is not None and layer_idx < len(cache.cross):
                k, v = cache.cross[layer_idx]
            else:
                k, v = self.encoder_keys_values(key_value_states)
                if cache is not None:
                    cache.cross.append((k, v))
        if bias is not None and bias.dtype != q.dtype:
            bias = bias.to(q.dtype)
        dropout = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=1.0)  # (B, H, T, d_kv)
        return self.o(y.transpose(1, 2).reshape(B, T, self.n_heads * self.d_kv))  # (B, T, d_model)


class T5LayerSelfAttention(nn.Module):
    def __init__(self, config: T5Config, has_relative_attention_bias: bool, is_decoder: bool) -> None:
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias, is_decoder)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None, cache: T5Cache | None, layer_idx: int) -> torch.Tensor:
        return x + self.dropout(self.SelfAttention(self.layer_norm(x), bias, None, cache, layer_idx))


class T5LayerCrossAttention(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.EncDecAttention = T5Attention(config, has_relative_attention_bias=False, is_decoder=True)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x: torch.Tensor, encoder_states: torch.Tensor, bias: torch.Tensor | None,
                cache: T5Cache | None, layer_idx: int) -> torch.Tensor:
        return x + self.dropout(self.EncDecAttention(self.layer_norm(x), bias, encoder_states, cache, layer_idx))


# --- block and stack ---------------------------------------------------------------------------------------------------


class T5Block(GradientCheckpointingLayer):
    """``layer``: self-attention, (decoder) cross-attention, MLP; each pre-norm with a residual."""

    def __init__(self, config: T5Config, has_relative_attention_bias: bool, is_decoder: bool) -> None:
        super().__init__()
        self.layer = nn.ModuleList([T5LayerSelfAttention(config, has_relative_attention_bias, is_decoder)])
        if is_decoder:
            self.layer.append(T5LayerCrossAttention(config))
        self.layer.append(T5LayerFF(config))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None, encoder_states: torch.Tensor | None,
                cross_bias: torch.Tensor | None, cache: T5Cache | None = None, layer_idx: int = 0) -> torch.Tensor:
        x = clamp_fp16(self.layer[0](x, bias, cache, layer_idx))
        if encoder_states is not None:
            x = clamp_fp16(self.layer[1](x, encoder_states, cross_bias, cache, layer_idx))
        return clamp_fp16(self.layer[-1](x))  # (B, T, d_model)


def _additive(bias: torch.Tensor | None, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """bias where ``mask`` (True = attend) allows, the dtype's minimum elsewhere (transformers' position-bias mask)."""
    if mask is None:
        return bias
    if bias is None:
        bias = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(mask, bias, torch.finfo(dtype).min)


class T5Stack(nn.Module):
    """Embeddings -> blocks -> final norm: the encoder, or (``is_decoder``) the decoder with cross-attention."""

    def __init__(self, config: T5Config, is_decoder: bool, per_layer_bias: bool = False) -> None:
        super().__init__()
        self.is_decoder = is_decoder
        self.per_layer_bias = per_layer_bias
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        n = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList(T5Block(config, per_layer_bias or i == 0, is_decoder) for i in range(n))
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, encoder_hidden_states: torch.Tensor | None = None,
                encoder_attention_mask: torch.Tensor | None = None, cache: T5Cache | None = None) -> torch.Tensor:
        """``attention_mask``: (B, S) 1/0 over this stack's positions (the decoder's: past and new);
        ``encoder_attention_mask``: (B, S_enc) over the encoder output the decoder attends to."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds (decoder_input_ids or "
                             "decoder_inputs_embeds for the decoder)")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, d_model)
        B, T = x.shape[:2]
        past = cache.length if cache is not None else 0
        S = past + T
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            if attention_mask.shape[-1] != S:
                raise ValueError(f"attention_mask covers {attention_mask.shape[-1]} positions but there are {S} "
                                 f"({past} cached, {T} new); pass a mask over past and new positions")
            mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
        if self.is_decoder and T > 1:
            causal = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=past)  # (T, S)
            mask = causal if mask is None else mask & causal
        cross = None
        if encoder_attention_mask is not None and not bool(encoder_attention_mask.all()):
            cross = _additive(None, encoder_attention_mask.bool()[:, None, None, :], x.dtype)  # (B, 1, 1, S_enc)
        shared_bias = None
        if not self.per_layer_bias:
            attention = self.block[0].layer[0].SelfAttention
            shared_bias = _additive(attention.compute_bias(T, S, past, x.device), mask, x.dtype)  # (B|1, H, T, S)
        x = self.dropout(x)
        for i, block in enumerate(self.block):
            bias = shared_bias
            if self.per_layer_bias:
                bias = _additive(block.layer[0].SelfAttention.compute_bias(T, S, past, x.device), mask, x.dtype)
            x = block(x, bias, encoder_hidden_states, cross, cache, i)
        if cache is not None:
            cache.advance(T)
        return self.dropout(self.final_layer_norm(x))  # (B, T, d_model)


# --- models ------------------------------------------------------------------------------------------------------------


class T5PreTrainedModel(PreTrainedModel):
    config_class = T5Config
    base_model_prefix = "transformer"
    input_embeddings_name = "shared"
    #: umT5: every self-attention layer has its own relative_attention_bias
    per_layer_bias: ClassVar[bool] = False
    # a decoder cross-attention bias some old checkpoints carry, which nothing reads
    ignore_unexpected = (r"decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$",)

    def _tied_pairs(self) -> dict[str, str]:
        """Every stack's ``embed_tokens`` is its model's ``shared`` (always, as in transformers); ``lm_head`` too
        when ``tie_word_embeddings``."""
        pairs = {}
        for name, module in self.named_modules():
            if isinstance(module, T5Stack):
                owner = name.rpartition(".")[0]
                pairs[f"{name}.embed_tokens.weight"] = f"{owner + '.' if owner else ''}shared.weight"
        if self.config.tie_word_embeddings and isinstance(getattr(self, "lm_head", None), nn.Module):
            pairs["lm_head.weight"] = "shared.weight"
        return pairs

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' T5 initialisation (``initializer_factor`` scales every std)."""
        c, factor = self.config, self.config.initializer_factor
        if isinstance(module, T5LayerNorm):
            nn.init.constant_(module.weight, factor)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=factor)
        elif isinstance(module, T5Attention):
            nn.init.normal_(module.q.weight, std=factor * (c.d_model * c.d_kv) ** -0.5)
            nn.init.normal_(module.k.weight, std=factor * c.d_model**-0.5)
            nn.init.normal_(module.v.weight, std=factor * c.d_model**-0.5)
            nn.init.normal_(module.o.weight, std=factor * (c.num_heads * c.d_kv) ** -0.5)
            if module.has_relative_attention_bias:
                nn.init.normal_(module.relative_attention_bias.weight, std=factor * c.d_model**-0.5)
        elif module is getattr(self, "lm_head", None):
            nn.init.normal_(module.weight, std=factor)
        elif isinstance(module, nn.Linear):  # wi/wi_0/wi_1 (in d_model), wo (in d_ff), the heads' projections
            nn.init.normal_(module.weight, std=factor * module.in_features**-0.5)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def _shift_right(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Decoder inputs from labels: ``decoder_start_token_id`` first, the labels one position later, -100 -> pad."""
        start, pad = self.config.decoder_start_token_id, self.config.pad_token_id
        if start is None or pad is None:
            raise ValueError(f"{type(self).__name__}: config.decoder_start_token_id ({start}) and pad_token_id "
                             f"({pad}) must both be set to make decoder inputs from labels; T5 uses the pad id (0) "
                             f"for both: set them in config.json, or pass decoder_input_ids")
        shifted = input_ids.new_zeros(input_ids.shape)
        shifted[..., 1:] = input_ids[..., :-1]
        shifted[..., 0] = start
        return shifted.masked_fill(shifted == -100, pad)


def _as_encoder_output(encoder_outputs: Any) -> BaseModelOutput:
    if isinstance(encoder_outputs, BaseModelOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, torch.Tensor):
        return BaseModelOutput(encoder_outputs)
    return BaseModelOutput(*encoder_outputs[:3])  # a tuple (return_dict=False)


class T5Model(T5PreTrainedModel):
    """``shared`` embeddings, ``encoder`` and ``decoder`` stacks: the decoder's last hidden state."""

    def __init__(self, config: T5Config) -> None:
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False, per_layer_bias=self.per_layer_bias)
        self.decoder = T5Stack(config, is_decoder=True, per_layer_bias=self.per_layer_bias)
        self.add_head(config)
        self.post_init()

    def add_head(self, config: T5Config) -> None:
        """The heads built on T5Model add their projection here (before post_init initialises and ties)."""

    def get_encoder(self) -> T5Stack:
        return self.encoder

    def new_kv_cache(self, batch_size: int, capacity: int) -> T5Cache:
        """An empty decoder cache with room for ``capacity`` decoder positions."""
        c, w = self.config, self.shared.weight
        return T5Cache(c.num_decoder_layers, batch_size, c.num_heads, c.d_kv, capacity, w.dtype, w.device)

    def _encode_decode(self, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs,
                       past_key_values, inputs_embeds, decoder_inputs_embeds, use_cache):
        if encoder_outputs is None:
            encoder_outputs = BaseModelOutput(self.encoder(input_ids, attention_mask, inputs_embeds))
        encoder_outputs = _as_encoder_output(encoder_outputs)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if past_key_values is not None and not isinstance(past_key_values, T5Cache):
            raise TypeError(f"past_key_values must be the T5Cache a previous call (or new_kv_cache) returned, got "
                            f"{type(past_key_values).__name__}")
        decoder_in = decoder_input_ids if decoder_input_ids is not None else decoder_inputs_embeds
        if decoder_in is None:
            raise ValueError(f"{type(self).__name__} needs decoder_input_ids (or decoder_inputs_embeds)")
        cache, use_cache = forward_cache(self, self.decoder.block, past_key_values, use_cache, decoder_in.shape[0],
                                         decoder_in.shape[1], self.new_kv_cache)
        h = self.decoder(decoder_input_ids, decoder_attention_mask, decoder_inputs_embeds,
                         encoder_outputs.last_hidden_state, attention_mask, cache)
        return h, (cache if use_cache else None), encoder_outputs

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                use_cache=None) -> Seq2SeqModelOutput:
        h, cache, enc = self._encode_decode(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask,
                                            encoder_outputs, past_key_values, inputs_embeds, decoder_inputs_embeds,
                                            use_cache)
        return Seq2SeqModelOutput(h, cache, encoder_last_hidden_state=enc.last_hidden_state)


class T5ForConditionalGeneration(T5Model, GenerationMixin):
    """T5Model plus ``lm_head``; ``labels`` give the loss (-100 ignored) and, shifted, the decoder inputs."""

    output_embeddings_name = "lm_head"

    def add_head(self, config: T5Config) -> None:
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return self._shift_right(labels)

    def decoding_step(self, cache: KVCache) -> T5NativeDecodingStep | None:
        """The decoder's steps through zoo's native kernel (zoo/plugins/t5/decoding.py), or None; the cache's
        cross-attention keys/values must be filled (by the first decoder pass, or :meth:`fill_cross_attention`)."""
        return native_decoding_step(self, cache)

    def fill_cross_attention(self, cache: T5Cache, encoder_hidden_states: torch.Tensor) -> None:
        """Fill ``cache``'s cross-attention keys/values from the encoder output (B, S, d_model), as the first
        decoder pass would (the same products), so that the start token can run through :meth:`decoding_step`
        too; a cache that already holds them is left as it is."""
        if not cache.cross:
            cache.cross = [block.layer[1].EncDecAttention.encoder_keys_values(encoder_hidden_states)
                           for block in self.decoder.block]

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=None, logits_to_keep: int = 0) -> Seq2SeqLMOutput:
        """``logits_to_keep=n`` projects only the last n decoder positions (a decoding step needs 1)."""
        if labels is not None:
            use_cache = False if past_key_values is None else use_cache  # as transformers: training keeps no cache
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self._shift_right(labels)
        h, cache, enc = self._encode_decode(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask,
                                            encoder_outputs, past_key_values, inputs_embeds, decoder_inputs_embeds,
                                            use_cache)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        if self.config.scale_decoder_outputs:
            h = h * self.config.d_model**-0.5
        logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device),
                                   ignore_index=-100)
        return Seq2SeqLMOutput(loss, logits, cache, encoder_last_hidden_state=enc.last_hidden_state)


class T5EncoderModel(T5PreTrainedModel):
    """``shared`` and the encoder stack alone: contextual embeddings of the input (AutoModelForTextEncoding)."""

    ignore_unexpected = (r"^decoder\.", r"^lm_head\.")

    def __init__(self, config: T5Config) -> None:
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False, per_layer_bias=self.per_layer_bias)
        self.post_init()

    def get_encoder(self) -> T5Stack:
        return self.encoder

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> BaseModelOutput:
        return BaseModelOutput(self.encoder(input_ids, attention_mask, inputs_embeds))


class T5ClassificationHead(nn.Module):
    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.dense = Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.out_proj = Linear(config.d_model, config.num_labels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(h)))))  # (B, num_labels)


class T5ForSequenceClassification(T5PreTrainedModel):
    """The decoder's hidden state at the last ``</s>`` of the input (every row must hold as many), then a tanh head;
    the decoder reads the input ids shifted right unless given decoder_input_ids."""

    base_model_class: ClassVar[type[T5Model]] = T5Model

    def __init__(self, config: T5Config) -> None:
        super().__init__(config)
        self.transformer = self.base_model_class(config)
        self.classification_head = T5ClassificationHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None) -> Seq2SeqSequenceClassifierOutput:
        if input_ids is None:
            raise ValueError(f"{type(self).__name__} pools at the </s> tokens of input_ids: pass input_ids")
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self._shift_right(input_ids)
        out = self.transformer(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs,
                               None, inputs_embeds, decoder_inputs_embeds, False, return_dict=True)
        h = out.last_hidden_state  # (B, T, d_model)
        eos = self.config.eos_token_id[0] if isinstance(self.config.eos_token_id, list) else self.config.eos_token_id
        eos_mask = input_ids.eq(eos)
        counts = eos_mask.sum(1)
        if int(counts.min()) < 1 or bool((counts != counts[0]).any()):
            raise ValueError(f"{type(self).__name__}: every row of input_ids must end its text with the same number "
                             f"of </s> tokens (id {eos}), found {counts.tolist()}; tokenize with the T5 tokenizer, "
                             f"which appends one")
        pooled = h[eos_mask].view(h.shape[0], -1, h.shape[-1])[:, -1]  # (B, d_model)
        logits = self.classification_head(pooled)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return Seq2SeqSequenceClassifierOutput(loss, logits, encoder_last_hidden_state=out.encoder_last_hidden_state)


class T5ForQuestionAnswering(T5Model):
    """Start/end logits over the decoder's positions (the decoder reads the input ids shifted right)."""

    def add_head(self, config: T5Config) -> None:
        self.qa_outputs = Linear(config.d_model, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, inputs_embeds=None, decoder_inputs_embeds=None, start_positions=None,
                end_positions=None) -> Seq2SeqQuestionAnsweringModelOutput:
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError(f"{type(self).__name__} needs input_ids or decoder_input_ids")
            decoder_input_ids = self._shift_right(input_ids)
        h, _, enc = self._encode_decode(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask,
                                        encoder_outputs, None, inputs_embeds, decoder_inputs_embeds, False)
        logits = self.qa_outputs(h)  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        return Seq2SeqQuestionAnsweringModelOutput(loss, start_logits, end_logits,
                                                   encoder_last_hidden_state=enc.last_hidden_state)


# --- mT5 and umT5: T5's classes over their own config; umT5 with a relative bias in every layer ------------------------


class MT5Model(T5Model):
    config_class = MT5Config


class MT5ForConditionalGeneration(T5ForConditionalGeneration):
    config_class = MT5Config


class MT5EncoderModel(T5EncoderModel):
    config_class = MT5Config


class MT5ForSequenceClassification(T5ForSequenceClassification):
    config_class, base_model_class = MT5Config, MT5Model


class MT5ForQuestionAnswering(T5ForQuestionAnswering):
    config_class = MT5Config


class UMT5Model(T5Model):
    config_class, per_layer_bias = UMT5Config, True


class UMT5ForConditionalGeneration(T5ForConditionalGeneration):
    config_class, per_layer_bias = UMT5Config, True


class UMT5EncoderModel(T5EncoderModel):
    config_class, per_layer_bias = UMT5Config, True


class UMT5ForSequenceClassification(T5ForSequenceClassification):
    config_class, base_model_class, per_layer_bias = UMT5Config, UMT5Model, True


class UMT5ForQuestionAnswering(T5ForQuestionAnswering):
    config_class, per_layer_bias = UMT5Config, True
