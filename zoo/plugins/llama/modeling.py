"""The Llama family (Touvron et al. 2023, "LLaMA", arXiv:2302.13971) and its close kin Mistral, Qwen2 and Qwen3,
top to bottom: what differs per family -> decoder layer -> model -> heads -> the families' classes.

A decoder layer is pre-norm, ``x + attn(rms(x))`` then ``x + mlp(rms(x))``, built from zoo/layers: grouped-query
attention with rotary positions, RMSNorm, the gated (SwiGLU) MLP. The families differ only in which projections carry
biases, whether each query/key head is RMS-normalised (Qwen3), and which layers attend through a sliding window:
:class:`LlamaLayout` and the config's ``layer_windows`` say so, in a few lines per family at the end of this file.
The reference is transformers 5.24's models/{llama,mistral,qwen2,qwen3}/modeling_*.py and modeling_layers.py (the
generic classification / QA heads); module and parameter names are the published checkpoints' (``model.layers.0.
self_attn.q_proj.weight``, ``lm_head.weight``, ``score.weight``), so loading is a lookup and files written by
``save_pretrained`` load in transformers. ``generate`` comes from :class:`zoo.generation.GenerationMixin`, whose
cache is laid out by ``num_key_value_heads`` and ``head_dim``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from zoo.generation import GenerationMixin, KVCache, causal_attention_mask, forward_cache, has_forward_hooks
from zoo.layers import GatedMLP, GroupedQueryAttention, Linear, RMSNorm, RotaryEmbedding, sliding_window_mask
from zoo.model_api import last_token_states
from zoo.modeling import GradientCheckpointingLayer, PreTrainedModel, classification_loss, span_loss
from zoo.outputs import (BaseModelOutputWithPast, CausalLMOutputWithPast, QuestionAnsweringOutput,
                         SequenceClassifierOutputWithPast, TokenClassifierOutput)
from zoo.plugins.llama.config import LlamaConfig, LlamaFamilyConfig, MistralConfig, Qwen2Config, Qwen3Config
from zoo.plugins.llama.decoding import LlamaNativeDecodingStep, native_decoding_step

logger = logging.getLogger(__name__)

# --- what a family's decoder layer has ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LlamaLayout:
    """The parts of a decoder layer that some families have and others not."""

    qkv_bias: bool = False  # biases on the query, key and value projections
    o_bias: bool = False  # a bias on the attention's output projection
    mlp_bias: bool = False  # biases on gate_proj, up_proj and down_proj
    qk_norm: bool = False  # an RMSNorm over each query and key head, before the rotation (Qwen3)


# --- decoder layer -----------------------------------------------------------------------------------------------------


class LlamaDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm residual block: x + self_attn(input_layernorm(x)), then x + mlp(post_attention_layernorm(x))."""

    def __init__(self, config: LlamaFamilyConfig, layer_idx: int, layout: LlamaLayout) -> None:
        super().__init__()
        assert config.head_dim is not None and config.num_key_value_heads is not None  # derived by the config
        self.self_attn = GroupedQueryAttention(
            config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.head_dim, layer_idx,
            qkv_bias=layout.qkv_bias, o_bias=layout.o_bias, qk_norm_eps=config.rms_norm_eps if layout.qk_norm else None,
            dropout=config.attention_dropout)
        self.mlp = GatedMLP(config.hidden_size, config.intermediate_size, config.hidden_act, bias=layout.mlp_bias)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        #: the positions its attention keeps (None: all before it); the model hands it the matching mask
        self.sliding_window = config.layer_windows[layer_idx]

    def forward(self, x: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None, is_causal: bool, cache: KVCache | None = None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        # float32: each residual is added inside the projection's GEMM (the same sum) unless a hook on the
        # attention or MLP module would then see x + its output
        fuse = x.dtype == torch.float32 and not has_forward_hooks(self)
        a, weights = self.self_attn(self.input_layernorm(x), position_embeddings, mask, is_causal, cache,
                                    output_attentions, residual=x if fuse else None)
        x = a if fuse else x + a
        m = self.mlp(self.post_attention_layernorm(x), residual=x if fuse else None)
        return (m if fuse else x + m), weights  # (B, T, C)


# --- model -------------------------------------------------------------------------------------------------------------


class LlamaPreTrainedModel(PreTrainedModel):
    config_class: ClassVar[type] = LlamaConfig
    base_model_prefix: ClassVar[str] = "model"

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' init: N(0, initializer_range) for Linear and Embedding (padding row zero), RMSNorm weights
        ones; the rotary frequencies, a buffer no checkpoint holds, are computed from the config."""
        super()._init_weights(module)
        if isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, RotaryEmbedding):
            module.reset_parameters()


class LlamaModel(LlamaPreTrainedModel):
    """Token embeddings -> decoder layers -> final RMSNorm; the hidden states of every position."""

    input_embeddings_name = "embed_tokens"

    @staticmethod
    def layout(config: LlamaConfig) -> LlamaLayout:
        """Llama: ``attention_bias`` on all four attention projections, ``mlp_bias`` on the MLP's three."""
        return LlamaLayout(qkv_bias=config.attention_bias, o_bias=config.attention_bias, mlp_bias=config.mlp_bias)

    def __init__(self, config: LlamaFamilyConfig) -> None:
        super().__init__(config)
        layout = self.layout(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, i, layout) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        # as transformers' Llama-family classes: plain RoPE turns whole heads, whatever partial_rotary_factor says
        self.rotary_emb = RotaryEmbedding(config, head_dim=config.head_dim, partial_with_default=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPast:
        """``attention_mask``: (B, past + T) 1/0 padding mask, or a boolean (B, 1, T, past + T) mask used as is
        (a sliding window still narrows it).

        The cache (``past_key_values``, extended, or a new one) is returned when ``use_cache`` (default
        ``config.use_cache``). Positions count from the cached length unless ``position_ids`` (B, T) are given
        (generate gives left-padded rows positions that count their real tokens only).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        config = self.config
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)  # (B, T, C)
        B, T = inputs_embeds.shape[:2]
        use_cache = config.use_cache if use_cache is None else use_cache
        cache, use_cache = forward_cache(self, self.layers, past_key_values, use_cache, B, T, self.new_cache)
        past = cache.length if cache is not None else 0
        x = inputs_embeds
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=x.device)[None]  # (1, T)
        position_embeddings = self.rotary_emb(x, position_ids)  # cos, sin: (B, T, rotary_dim) each
        # one mask per distinct window, built once for every layer that uses it
        mask, is_causal = causal_attention_mask(attention_mask, T, past, x.device)
        masks = {window: sliding_window_mask(mask, is_causal, T, past + T, window, x.device)
                 for window in {layer.sliding_window for layer in self.layers}}

        hidden_states: list[torch.Tensor] = []
        attentions: list[torch.Tensor] = []
        for layer in self.layers:
            if output_hidden_states:
                hidden_states.append(x)
            x, weights = layer(x, position_embeddings, *masks[layer.sliding_window], cache, output_attentions)
            if weights is not None:
                attentions.append(weights)
        x = self.norm(x)
        if output_hidden_states:
            hidden_states.append(x)
        if cache is not None:
            cache.advance(T)
        return BaseModelOutputWithPast(x, cache if use_cache else None,
                                       tuple(hidden_states) if output_hidden_states else None,
                                       tuple(attentions) if output_attentions else None)

    def new_cache(self, batch_size: int, capacity: int) -> KVCache:
        c = self.config
        return KVCache(c.num_hidden_layers, batch_size, c.num_key_value_heads, c.head_dim, capacity,
                       self.embed_tokens.weight.dtype, self.embed_tokens.weight.device)


# --- heads -------------------------------------------------------------------------------------------------------------


class LlamaForCausalLM(LlamaPreTrainedModel, GenerationMixin):
    """Next-token logits (through the word embeddings when ``tie_word_embeddings``); ``generate`` from the mixin."""

    base_class: ClassVar[type[LlamaModel]] = LlamaModel
    tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}
    output_embeddings_name = "lm_head"
    computes_positions = True  # rotary: generate may run past max_position_embeddings, with a warning

    def __init__(self, config: LlamaFamilyConfig) -> None:
        super().__init__(config)
        self.model = self.base_class(config)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def new_kv_cache(self, batch_size: int, capacity: int) -> KVCache:
        return self.model.new_cache(batch_size, capacity)

    def decoding_step(self, cache: KVCache) -> LlamaNativeDecodingStep | None:
        """zoo's native step (float32 or bfloat16, a few rows, on CPU: zoo/plugins/llama/decoding.py) where it
        computes what forward does, else None: generation then calls forward."""
        return native_decoding_step(self, cache)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
                labels=None, use_cache=None, logits_to_keep: int = 0, output_hidden_states=None,
                output_attentions=None) -> CausalLMOutputWithPast:
        """``labels`` (B, T) are the input ids themselves (shifted inside; -100 ignored). ``logits_to_keep=n``
        projects only the last n positions (generation needs 1): the vocabulary projection is the largest product of
        a small model, and a decoding step needs none of the others."""
        out = self.model(input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache,
                         output_hidden_states, output_attentions, return_dict=True)
        h = out.last_hidden_state
        logits = self.lm_head(h[:, -logits_to_keep:] if logits_to_keep else h)  # (B, T or logits_to_keep, V)
        loss = None
        if labels is not None:
            shift_logits = logits[:, :-1].float().reshape(-1, logits.shape[-1])
            loss = F.cross_entropy(shift_logits, labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)


class LlamaForSequenceClassification(LlamaPreTrainedModel):
    """Classifies from the last token that is not padding, the one that has read the whole text (reward models).

    The last token is the rightmost one different from ``config.pad_token_id``, so left and right padding both
    work; without a pad_token_id only batches of one can be classified, as in transformers.
    """

    base_class: ClassVar[type[LlamaModel]] = LlamaModel

    def __init__(self, config: LlamaFamilyConfig) -> None:
        super().__init__(config)
        self.model = self.base_class(config)
        self.score = Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
                labels=None, use_cache=None, output_hidden_states=None,
                output_attentions=None) -> SequenceClassifierOutputWithPast:
        out = self.model(input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, use_cache,
                         output_hidden_states, output_attentions, return_dict=True)
        logits = self.score(last_token_states(out.last_hidden_state, input_ids, self.config.pad_token_id))  # (B, labels)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)


class LlamaForTokenClassification(LlamaPreTrainedModel):
    """Per-token logits through dropout and ``score`` (transformers' GenericForTokenClassification)."""

    base_class: ClassVar[type[LlamaModel]] = LlamaModel

    def __init__(self, config: LlamaFamilyConfig) -> None:
        super().__init__(config)
        self.model = self.base_class(config)
        p = getattr(config, "classifier_dropout", None)
        if p is None:
            p = getattr(config, "hidden_dropout", None)
        self.dropout = nn.Dropout(p if p is not None else 0.1)
        self.score = Linear(config.hidden_size, config.num_labels,
                            bias=getattr(config, "token_classification_bias", True))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
                labels=None, use_cache=None, output_hidden_states=None,
                output_attentions=None) -> TokenClassifierOutput:
        # the output has no cache: none is made (a given one is still read and extended)
        out = self.model(input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, False,
                         output_hidden_states, output_attentions, return_dict=True)
        logits = self.score(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1).to(logits.device))
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class LlamaForQuestionAnswering(LlamaPreTrainedModel):
    """Start/end logits of an answer span (transformers' GenericForQuestionAnswering). Llama and Qwen keep the body
    under ``transformer`` in these checkpoints (an older layout), Mistral under ``model``."""

    base_class: ClassVar[type[LlamaModel]] = LlamaModel
    base_model_prefix: ClassVar[str] = "transformer"

    def __init__(self, config: LlamaFamilyConfig) -> None:
        super().__init__(config)
        setattr(self, self.base_model_prefix, self.base_class(config))
        self.qa_outputs = Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
                start_positions=None, end_positions=None, output_hidden_states=None,
                output_attentions=None) -> QuestionAnsweringOutput:
        body = getattr(self, self.base_model_prefix)
        out = body(input_ids, attention_mask, position_ids, past_key_values, inputs_embeds, False,
                   output_hidden_states, output_attentions, return_dict=True)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        return QuestionAnsweringOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)


# --- the families --------------------------------------------------------------------------------------------------------
# Each is Llama with its own config class and layout; its heads are Llama's over its own base model.


class MistralModel(LlamaModel):
    """Mistral: no biases anywhere; every layer attends through ``sliding_window`` when it is set."""

    config_class = MistralConfig

    @staticmethod
    def layout(config: MistralConfig) -> LlamaLayout:  # type: ignore[override]
        return LlamaLayout()


class MistralForCausalLM(LlamaForCausalLM):
    config_class, base_class = MistralConfig, MistralModel


class MistralForSequenceClassification(LlamaForSequenceClassification):
    config_class, base_class = MistralConfig, MistralModel


class MistralForTokenClassification(LlamaForTokenClassification):
    config_class, base_class = MistralConfig, MistralModel


class MistralForQuestionAnswering(LlamaForQuestionAnswering):
    config_class, base_class, base_model_prefix = MistralConfig, MistralModel, "model"


class Qwen2Model(LlamaModel):
    """Qwen2: biases on q/k/v (never on o or the MLP); the layers ``layer_types`` marks slide (use_sliding_window)."""

    config_class = Qwen2Config

    @staticmethod
    def layout(config: Qwen2Config) -> LlamaLayout:  # type: ignore[override]
        return LlamaLayout(qkv_bias=True)


class Qwen2ForCausalLM(LlamaForCausalLM):
    config_class, base_class = Qwen2Config, Qwen2Model


class Qwen2ForSequenceClassification(LlamaForSequenceClassification):
    config_class, base_class = Qwen2Config, Qwen2Model


class Qwen2ForTokenClassification(LlamaForTokenClassification):
    config_class, base_class = Qwen2Config, Qwen2Model


class Qwen2ForQuestionAnswering(LlamaForQuestionAnswering):
    config_class, base_class = Qwen2Config, Qwen2Model


class Qwen3Model(LlamaModel):
    """Qwen3: ``attention_bias`` on all four attention projections and an RMSNorm on each query and key head
    (``q_norm`` / ``k_norm``); sliding layers as Qwen2's."""

    config_class = Qwen3Config

    @staticmethod
    def layout(config: Qwen3Config) -> LlamaLayout:  # type: ignore[override]
        return LlamaLayout(qkv_bias=config.attention_bias, o_bias=config.attention_bias, qk_norm=True)


class Qwen3ForCausalLM(LlamaForCausalLM):
    config_class, base_class = Qwen3Config, Qwen3Model


class Qwen3ForSequenceClassification(LlamaForSequenceClassification):
    config_class, base_class = Qwen3Config, Qwen3Model


class Qwen3ForTokenClassification(LlamaForTokenClassification):
    config_class, base_class = Qwen3Config, Qwen3Model


class Qwen3ForQuestionAnswering(LlamaForQuestionAnswering):
    config_class, base_class = Qwen3Config, Qwen3Model
