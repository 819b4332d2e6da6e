"""DistilBERT (Sanh et al. 2019, arXiv:1910.01108), top to bottom: embeddings -> attention -> FFN -> block -> model -> heads.

Parameter names are those of the published checkpoints (transformers' modeling_distilbert.py:
``distilbert.transformer.layer.0.attention.q_lin.weight``, ``vocab_projector``, ``pre_classifier``), so Hub
checkpoints load unmodified. A 6-layer post-norm BERT without token types or pooler. Each block is a
:class:`~zoo.modeling.GradientCheckpointingLayer`; the embedding paths below give it zoo's model API
(``get_input_embeddings``, ``resize_token_embeddings``, ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.activations import get_activation
from zoo.errors import ConfigError
from zoo.modeling import GradientCheckpointingLayer, PreTrainedModel, classification_loss, key_padding_mask, span_loss
from zoo.outputs import (BaseModelOutput, MaskedLMOutput, QuestionAnsweringOutput, SequenceClassifierOutput,
                         TokenClassifierOutput)
from zoo_distilbert.config import DistilBertConfig


def sinusoidal_positions(n_pos: int, dim: int) -> torch.Tensor:
    """The fixed sin/cos table of ``sinusoidal_pos_embds`` checkpoints (computed in float64 as transformers does)."""
    pos = torch.arange(n_pos, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)  # (n_pos, dim)
    table = torch.empty(n_pos, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


class DistilBertEmbeddings(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.dim)
        self.LayerNorm = nn.LayerNorm(config.dim, eps=1e-12)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, position_ids: torch.Tensor | None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, D)
        T = inputs_embeds.shape[1]
        if T > self.position_embeddings.num_embeddings:
            raise ValueError(f"input has {T} tokens but the model takes at most {self.position_embeddings.num_embeddings}; "
                             f"truncate it (truncation=True in the tokenizer)")
        if position_ids is None:
            position_ids = torch.arange(T, device=inputs_embeds.device).unsqueeze(0)  # (1, T)
        return self.dropout(self.LayerNorm(inputs_embeds + self.position_embeddings(position_ids)))  # (B, T, D)


class DistilBertSelfAttention(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.dim // config.n_heads
        self.q_lin = nn.Linear(config.dim, config.dim)
        self.k_lin = nn.Linear(config.dim, config.dim)
        self.v_lin = nn.Linear(config.dim, config.dim)
        self.out_lin = nn.Linear(config.dim, config.dim)
        self.dropout_p = config.attention_dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, D = x.shape
        q = self.q_lin(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k_lin(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        v = self.v_lin(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        dropout = self.dropout_p if self.training else 0.0
        weights = None
        if output_attentions:
            scores = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5  # (B, nh, T, T)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            weights = F.dropout(scores.softmax(-1), dropout, self.training)
            y = weights @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)  # (B, nh, T, hd)
        return self.out_lin(y.transpose(1, 2).reshape(B, T, D)), weights  # (B, T, D)


class DistilBertFFN(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.lin1 = nn.Linear(config.dim, config.hidden_dim)
        self.lin2 = nn.Linear(config.hidden_dim, config.dim)
        self.act = get_activation(config.activation)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.lin2(self.act(self.lin1(x))))  # (B, T, D)


class DistilBertBlock(GradientCheckpointingLayer):
    """Post-norm: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.attention = DistilBertSelfAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)
        self.ffn = DistilBertFFN(config)
        self.output_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attention(x, mask, output_attentions)
        x = self.sa_layer_norm(a + x)
        return self.output_layer_norm(self.ffn(x) + x), weights  # (B, T, D)


class DistilBertTransformer(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(DistilBertBlock(config) for _ in range(config.n_layers))


class DistilBertPreTrainedModel(PreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    ignore_unexpected = (r"embeddings\.position_ids$",)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, DistilBertEmbeddings) and self.config.sinusoidal_pos_embds:
            with torch.no_grad():
                module.position_embeddings.weight.copy_(sinusoidal_positions(*module.position_embeddings.weight.shape))


class DistilBertModel(DistilBertPreTrainedModel):
    input_embeddings_name = "embeddings.word_embeddings"

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        self.embeddings = DistilBertEmbeddings(config)
        self.transformer = DistilBertTransformer(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None,
                output_hidden_states=None, output_attentions=None) -> BaseModelOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        x = self.embeddings(input_ids, inputs_embeds, position_ids)  # (B, T, D)
        mask = key_padding_mask(attention_mask)  # (B, 1, 1, T) or None
        hidden_states, attentions = [x], []
        for block in self.transformer.layer:
            x, weights = block(x, mask, output_attentions)
            hidden_states.append(x)
            if weights is not None:
                attentions.append(weights)
        return BaseModelOutput(x, tuple(hidden_states) if output_hidden_states else None,
                               tuple(attentions) if output_attentions else None)


class DistilBertForMaskedLM(DistilBertPreTrainedModel):
    tied_weights = {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}
    output_embeddings_name = "vocab_projector"

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        self.distilbert = DistilBertModel(config)
        self.act = get_activation(config.activation)
        self.vocab_transform = nn.Linear(config.dim, config.dim)
        self.vocab_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)
        self.vocab_projector = nn.Linear(config.dim, config.vocab_size)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None, labels=None,
                output_hidden_states=None, output_attentions=None) -> MaskedLMOutput:
        out = self.distilbert(input_ids, attention_mask, inputs_embeds, position_ids, output_hidden_states,
                              output_attentions, return_dict=True)
        h = self.vocab_layer_norm(self.act(self.vocab_transform(out.last_hidden_state)))  # (B, T, D)
        logits = self.vocab_projector(h)  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1)) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class DistilBertForSequenceClassification(DistilBertPreTrainedModel):
    """h[CLS] -> pre_classifier -> ReLU -> dropout -> classifier."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = nn.Linear(config.dim, config.dim)
        self.classifier = nn.Linear(config.dim, config.num_labels)
        self.dropout = nn.Dropout(config.seq_classif_dropout)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None, labels=None,
                output_hidden_states=None, output_attentions=None) -> SequenceClassifierOutput:
        out = self.distilbert(input_ids, attention_mask, inputs_embeds, position_ids, output_hidden_states,
                              output_attentions, return_dict=True)
        pooled = self.dropout(F.relu(self.pre_classifier(out.last_hidden_state[:, 0])))  # (B, D)
        logits = self.classifier(pooled)  # (B, num_labels)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class DistilBertForTokenClassification(DistilBertPreTrainedModel):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        self.distilbert = DistilBertModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.dim, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None, labels=None,
                output_hidden_states=None, output_attentions=None) -> TokenClassifierOutput:
        out = self.distilbert(input_ids, attention_mask, inputs_embeds, position_ids, output_hidden_states,
                              output_attentions, return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = F.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1)) if labels is not None else None
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class DistilBertForQuestionAnswering(DistilBertPreTrainedModel):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        if config.num_labels != 2:
            raise ConfigError(f"question answering predicts a start and an end logit: num_labels must be 2, "
                              f"not {config.num_labels}")
        self.distilbert = DistilBertModel(config)
        self.qa_outputs = nn.Linear(config.dim, config.num_labels)
        self.dropout = nn.Dropout(config.qa_dropout)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, position_ids=None, start_positions=None,
                end_positions=None, output_hidden_states=None, output_attentions=None) -> QuestionAnsweringOutput:
        out = self.distilbert(input_ids, attention_mask, inputs_embeds, position_ids, output_hidden_states,
                              output_attentions, return_dict=True)
        logits = self.qa_outputs(self.dropout(out.last_hidden_state))  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))  # (B, T) each
        loss = (span_loss(start_logits, end_logits, start_positions, end_positions)
                if start_positions is not None and end_positions is not None else None)
        return QuestionAnsweringOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
