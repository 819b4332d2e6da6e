"""RoBERTa (Liu et al. 2019, arXiv:1907.11692): BERT's encoder with fairseq's positions and its own heads.

The encoder is zoo's BERT, reused by subclassing: :class:`RobertaEmbeddings` overrides only how position ids are
made, and :class:`RobertaModel` is :class:`~zoo.plugins.bert.modeling.BertModel` with those embeddings. What is
RoBERTa's own lives here, top to bottom: positions -> embeddings -> model -> heads.

- Position ids count from ``pad_token_id + 1`` and padding tokens keep position ``pad_token_id`` (fairseq's
  ``utils.make_positions``), so left and right padding give a sentence the same positions.
- The MLM head is ``lm_head.dense -> gelu -> lm_head.layer_norm -> lm_head.decoder`` (tied to the word embeddings);
  the classification head reads ``<s>`` through ``classifier.dense -> tanh -> classifier.out_proj``, not BERT's pooler.

Module and parameter names are those of the published checkpoints (transformers' modeling_roberta.py), so
``roberta.encoder.layer.0.attention.self.query.weight`` loads as a lookup.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.layers import Linear
from zoo.modeling import classification_loss
from zoo.outputs import MaskedLMOutput, SequenceClassifierOutput
from zoo.plugins.bert.modeling import (BertEmbeddings, BertForQuestionAnswering, BertForTokenClassification, BertModel,
                                      BertPreTrainedModel)
from zoo.plugins.roberta.config import RobertaConfig

# --- positions -----------------------------------------------------------------------------------------------------------


def create_position_ids(input_ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """Positions padding_idx+1, padding_idx+2, ... for real tokens; padding tokens get padding_idx itself."""
    mask = input_ids.ne(padding_idx).int()  # (B, T)
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx  # (B, T)


# --- embeddings ----------------------------------------------------------------------------------------------------------


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embeddings; only the position ids differ (and the position table has a padding row)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        # Rows 0..padding_idx are never a real token's position; the padding row starts at zero, as in fairseq.
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size, padding_idx=self.padding_idx)

    def position_ids(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
        limit = self.position_embeddings.num_embeddings
        if input_ids is not None:
            seq_len = input_ids.shape[1]
            positions = create_position_ids(input_ids, self.padding_idx)  # (B, T)
        else:
            # Embeddings cannot say which tokens are padding: every position counts.
            seq_len = inputs_embeds.shape[1]
            start = self.padding_idx + 1
            positions = torch.arange(start, start + seq_len, device=inputs_embeds.device).unsqueeze(0)  # (1, T)
        # Only a batch that could reach the end of the table is checked (the check reads the tensor).
        if seq_len + self.padding_idx >= limit and int(positions.max()) >= limit:
            raise ValueError(f"input has {seq_len} tokens but RoBERTa's positions start after pad_token_id "
                             f"{self.padding_idx}, so the model takes at most {limit - self.padding_idx - 1}; "
                             f"truncate it (truncation=True in the tokenizer)")
        return positions


# --- model ---------------------------------------------------------------------------------------------------------------


class RobertaPreTrainedModel(BertPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"

    def base_model_class(self) -> type:
        return RobertaModel

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RobertaLMHead):
            nn.init.zeros_(module.bias)


class RobertaModel(RobertaPreTrainedModel, BertModel):
    """BertModel with RoBERTa's embeddings: same encoder, pooler and outputs."""

    embeddings_class = RobertaEmbeddings


# --- heads ---------------------------------------------------------------------------------------------------------------


class RobertaLMHead(nn.Module):
    """dense -> gelu -> layer_norm -> decoder. The activation is always exact GELU, whatever ``hidden_act`` says.

    As in transformers, ``decoder.bias`` is tied to ``bias`` only while ``config.tie_word_embeddings``; an untied
    checkpoint carries both and the decoder's is the one used.
    """

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(h))))  # (B, T, V)


class RobertaClassificationHead(nn.Module):
    """The ``<s>`` vector -> dropout -> dense -> tanh -> dropout -> out_proj (RoBERTa has no separate pooler here)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.out_proj = Linear(config.hidden_size, config.num_labels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.dropout(h[:, 0])  # (B, H)
        x = self.dropout(torch.tanh(self.dense(x)))  # (B, H)
        return self.out_proj(x)  # (B, num_labels)


class RobertaForMaskedLM(RobertaPreTrainedModel):
    tied_weights = {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
                    "lm_head.decoder.bias": "lm_head.bias"}
    output_embeddings_name = "lm_head.decoder"

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        """The decoder, and its bias as ``lm_head.bias`` too: transformers leaves that one at the old size after an
        untied resize, which its own loading then refuses; here the saved ``lm_head.bias`` fits the vocabulary."""
        super().set_output_embeddings(new_embeddings)
        self.lm_head.bias = new_embeddings.bias

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None) -> MaskedLMOutput:
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
                           output_attentions, return_dict=True)
        logits = self.lm_head(out.last_hidden_state)  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.view(-1)) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class RobertaForSequenceClassification(RobertaPreTrainedModel):
    """The loss follows config.problem_type (inferred from labels if unset), as in BERT."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None) -> SequenceClassifierOutput:
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
                           output_attentions, return_dict=True)
        logits = self.classifier(out.last_hidden_state)  # (B, num_labels)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class RobertaForTokenClassification(RobertaPreTrainedModel, BertForTokenClassification):
    """BERT's token-classification head over the RoBERTa encoder (``roberta.*`` keys)."""


class RobertaForQuestionAnswering(RobertaPreTrainedModel, BertForQuestionAnswering):
    """BERT's span head over the RoBERTa encoder (``roberta.*`` keys)."""
