"""BertConfig: the fields of transformers' BertConfig (configuration_bert.py), same names and defaults.

Each size is bounded (zoo/config_fields.py) and ``hidden_size`` must split evenly into heads, so a config.json the
model cannot be built from is refused when it is read, with the field, its value and what is allowed.
"""

from __future__ import annotations

from typing import ClassVar

from zoo.config_fields import MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH, Field
from zoo.configuration import Config
from zoo.errors import ConfigError

PROBABILITY = dict(ge=0, le=1)


class BertConfig(Config):
    model_type: ClassVar[str] = "bert"

    vocab_size: int = Field(30522, ge=1, le=MAX_VOCAB)
    hidden_size: int = Field(768, ge=1, le=MAX_WIDTH, divisible_by="num_attention_heads")
    num_hidden_layers: int = Field(12, ge=1, le=MAX_LAYERS)
    num_attention_heads: int = Field(12, ge=1, le=MAX_HEADS)
    intermediate_size: int = Field(3072, ge=1, le=MAX_WIDTH)
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = Field(0.1, **PROBABILITY)
    attention_probs_dropout_prob: float = Field(0.1, **PROBABILITY)
    max_position_embeddings: int = Field(512, ge=1, le=MAX_POSITIONS)
    type_vocab_size: int = Field(2, ge=1, le=MAX_VOCAB)
    initializer_range: float = Field(0.02, ge=0, le=10)
    layer_norm_eps: float = Field(1e-12, gt=0, le=1)
    # the embedding's padding row: an index into the vocabulary
    pad_token_id: int | None = Field(0, ge=0, lt="vocab_size")
    position_embedding_type: str = Field("absolute", choices=("absolute",),
                                         hint="zoo's BERT uses absolute position embeddings")
    classifier_dropout: float | None = Field(None, **PROBABILITY)
    is_decoder: bool = False
    add_cross_attention: bool = False

    def validate(self) -> None:
        super().validate()
        if self.is_decoder or self.add_cross_attention:
            raise ConfigError("this config describes a BERT decoder (is_decoder/add_cross_attention); "
                              "zoo's BERT plugin provides the encoder only")
