"""BertConfig: the fields of transformers' BertConfig (configuration_bert.py), same names and defaults."""

from __future__ import annotations

from typing import ClassVar

from zoo.configuration import Config
from zoo.errors import ConfigError


class BertConfig(Config):
    model_type: ClassVar[str] = "bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    position_embedding_type: str = "absolute"
    classifier_dropout: float | None = None
    is_decoder: bool = False
    add_cross_attention: bool = False

    def validate(self) -> None:
        super().validate()
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                              f"{self.num_attention_heads}; fix config.json")
        if self.position_embedding_type != "absolute":
            raise ConfigError(f"position_embedding_type {self.position_embedding_type!r} is not supported; "
                              f"zoo's BERT uses absolute position embeddings")
        if self.is_decoder or self.add_cross_attention:
            raise ConfigError("this config describes a BERT decoder (is_decoder/add_cross_attention); "
                              "zoo's BERT plugin provides the encoder only")
