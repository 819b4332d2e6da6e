"""BERT (Devlin et al. 2019, arXiv:1810.04805), top to bottom: embeddings -> attention -> MLP -> layer -> model -> heads.

Module and parameter names are those of the published checkpoints (transformers' modeling_bert.py), so a Hub
checkpoint loads as a lookup: ``bert.encoder.layer.0.attention.self.query.weight`` is that very tensor here.
Attention runs through ``torch.nn.functional.scaled_dot_product_attention``. Each :class:`BertLayer` is a
:class:`~zoo.modeling.GradientCheckpointingLayer`, and the everyday model API (embeddings, resizing, ``return_dict``)
comes from zoo/model_api.py through the two embedding paths the classes declare.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo.activations import get_activation
from zoo.layers import Linear, project
from zoo.modeling import GradientCheckpointingLayer, PreTrainedModel, classification_loss, key_padding_mask, span_loss
from zoo.outputs import (MaskedLMOutput, ModelOutput, QuestionAnsweringOutput, SequenceClassifierOutput,
                         TokenClassifierOutput)
from zoo.plugins.bert.config import BertConfig

# --- outputs -------------------------------------------------------------------------------------------------------------


@dataclass
class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    """transformers' output of the bare encoder. ``cross_attentions`` is the empty tuple whenever ``attentions`` are
    returned (an encoder has none), as in transformers, so ``to_tuple()`` has the same entries in both."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class PreTrainingOutput(ModelOutput):
    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# --- embeddings ----------------------------------------------------------------------------------------------------------


class BertEmbeddings(nn.Module):
    """word + position + token type, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def position_ids(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
        """BERT counts positions from 0 whatever the padding; RoBERTa overrides this."""
        seq_len = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        device = (input_ids if input_ids is not None else inputs_embeds).device
        return torch.arange(seq_len, device=device).unsqueeze(0)  # (1, T)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, H)
        if position_ids is None:
            position_ids = self.position_ids(input_ids, inputs_embeds)
        seq_len = inputs_embeds.shape[1]
        if seq_len > self.position_embeddings.num_embeddings:
            raise ValueError(f"input has {seq_len} tokens but the model takes at most "
                             f"{self.position_embeddings.num_embeddings}; truncate it (truncation=True in the tokenizer)")
        if token_type_ids is None:
            embeddings = inputs_embeds + self.token_type_embeddings.weight[0]  # all type 0: one row, broadcast
        else:
            embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))  # (B, T, H)


# --- attention -----------------------------------------------------------------------------------------------------------


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = Linear(config.hidden_size, config.hidden_size)
        self.key = Linear(config.hidden_size, config.hidden_size)
        self.value = Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, H = x.shape
        q, k, v = (t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd) each
                   for t in project(x, self.query, self.key, self.value))  # one product where it can be
        dropout = self.dropout_p if self.training else 0.0
        if output_attentions:  # SDPA does not expose the weights: compute them explicitly
            scores = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5  # (B, nh, T, T)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            weights = F.dropout(scores.softmax(dim=-1), dropout, self.training)
            y = weights @ v  # (B, nh, T, hd)
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)  # (B, nh, T, hd)
        return y.transpose(1, 2).reshape(B, T, H), weights  # (B, T, H)


class BertSelfOutput(nn.Module):
    """Projection after attention, dropout, residual, LayerNorm (post-norm)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        if self.training and self.dropout.p > 0:
            return self.LayerNorm(self.dropout(self.dense(h)) + residual)  # (B, T, H)
        return self.LayerNorm(self.dense(h, add=residual))  # (B, T, H); the residual added inside the product


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, weights = self.self(x, mask, output_attentions)
        return self.output(h, x), weights


# --- MLP -----------------------------------------------------------------------------------------------------------------


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation(config.hidden_act)  # checked here: an unknown name fails at build time
        self.act_name = config.hidden_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x, activation=self.act_name)  # (B, T, I); the activation applied inside the product


class BertOutput(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        if self.training and self.dropout.p > 0:
            return self.LayerNorm(self.dropout(self.dense(h)) + residual)  # (B, T, H)
        return self.LayerNorm(self.dense(h, add=residual))  # (B, T, H)


# --- layer and encoder ---------------------------------------------------------------------------------------------------


class BertLayer(GradientCheckpointingLayer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attention(x, mask, output_attentions)
        return self.output(self.intermediate(a), a), weights  # (B, T, H)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool, output_attentions: bool):
        hidden_states: list[torch.Tensor] = [x] if output_hidden_states else []
        attentions: list[torch.Tensor] = []
        for layer in self.layer:
            x, weights = layer(x, mask, output_attentions)
            if output_hidden_states:
                hidden_states.append(x)
            if weights is not None:
                attentions.append(weights)
        return x, (tuple(hidden_states) if output_hidden_states else None), (tuple(attentions) if output_attentions else None)


class BertPooler(nn.Module):
    """tanh(dense(h[CLS])): the sentence vector the NSP and classification heads read."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))  # (B, H)


# --- model ---------------------------------------------------------------------------------------------------------------


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # transformers keeps these as non-persistent buffers; older checkpoints saved them.
    ignore_unexpected = (r"embeddings\.position_ids$", r"embeddings\.token_type_ids$")

    def base_model_class(self) -> type[BertModel]:
        """The bare encoder a head wraps; an architecture built on BERT's heads (RoBERTa) returns its own."""
        return BertModel

    def add_base_model(self, add_pooling_layer: bool) -> None:
        """Attach the encoder under ``base_model_prefix`` ("bert"), the name its checkpoint keys start with."""
        setattr(self, self.base_model_prefix, self.base_model_class()(self.config, add_pooling_layer=add_pooling_layer))

    @property
    def base_model(self) -> BertModel:
        return getattr(self, self.base_model_prefix)


class BertModel(BertPreTrainedModel):
    embeddings_class = BertEmbeddings
    input_embeddings_name = "embeddings.word_embeddings"

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # (B, T, H)
        mask = key_padding_mask(attention_mask)  # (B, 1, 1, T) or None
        x, hidden_states, attentions = self.encoder(x, mask, output_hidden_states, output_attentions)
        pooled = self.pooler(x) if self.pooler is not None else None
        return BaseModelOutputWithPoolingAndCrossAttentions(x, pooled, hidden_states, attentions,
                                                            () if output_attentions else None)


# --- heads ---------------------------------------------------------------------------------------------------------------


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.act = get_activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(h)))  # (B, T, H)


class BertLMPredictionHead(nn.Module):
    """Transform, then project onto the vocabulary with the (tied) word embeddings plus an output-only bias.

    As in transformers, ``decoder.bias`` is tied to ``bias`` only while ``config.tie_word_embeddings``; an untied
    checkpoint carries both and the decoder's is the one used.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(h))  # (B, T, V)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.predictions(h)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = Linear(config.hidden_size, 2)

    def forward(self, h: torch.Tensor, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictions(h), self.seq_relationship(pooled)


class _BertMLMBase(BertPreTrainedModel):
    tied_weights = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                    "cls.predictions.decoder.bias": "cls.predictions.bias"}
    output_embeddings_name = "cls.predictions.decoder"

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        """The decoder, and its bias as the head's ``bias`` too (as transformers sets both), so a resized untied
        decoder saves a ``cls.predictions.bias`` of its own size."""
        super().set_output_embeddings(new_embeddings)
        self.cls.predictions.bias = new_embeddings.bias

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            nn.init.zeros_(module.bias)


class BertForPreTraining(_BertMLMBase):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, next_sentence_label=None, output_hidden_states=None, output_attentions=None) -> PreTrainingOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
                        output_attentions, return_dict=True)
        prediction_logits, nsp_logits = self.cls(out.last_hidden_state, out.pooler_output)  # (B, T, V), (B, 2)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = F.cross_entropy(prediction_logits.view(-1, self.config.vocab_size), labels.view(-1)) + F.cross_entropy(
                nsp_logits.view(-1, 2), next_sentence_label.view(-1))
        return PreTrainingOutput(loss, prediction_logits, nsp_logits, out.hidden_states, out.attentions)


class BertForMaskedLM(_BertMLMBase):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None) -> MaskedLMOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
                        output_attentions, return_dict=True)
        logits = self.cls(out.last_hidden_state)  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.view(-1)) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class BertForSequenceClassification(BertPreTrainedModel):
    """Pooled [CLS] -> dropout -> linear; the loss follows config.problem_type (inferred from labels if unset)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None) -> SequenceClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
                        output_attentions, return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class BertForTokenClassification(BertPreTrainedModel):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.add_base_model(add_pooling_layer=False)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None) -> TokenClassifierOutput:
        out = self.base_model(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                              output_hidden_states, output_attentions, return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = F.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1)) if labels is not None else None
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class BertForQuestionAnswering(BertPreTrainedModel):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.add_base_model(add_pooling_layer=False)
        self.qa_outputs = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                start_positions=None, end_positions=None, output_hidden_states=None, output_attentions=None) -> QuestionAnsweringOutput:
        out = self.base_model(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                              output_hidden_states, output_attentions, return_dict=True)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))  # (B, T) each
        loss = span_loss(start_logits, end_logits, start_positions, end_positions) if start_positions is not None and end_positions is not None else None
        return QuestionAnsweringOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
