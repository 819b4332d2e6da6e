"""DistilBertConfig: the fields of transformers' DistilBertConfig, same names and defaults."""

from __future__ import annotations

from typing import ClassVar

from zoo.configuration import Config
from zoo.errors import ConfigError


class DistilBertConfig(Config):
    model_type: ClassVar[str] = "distilbert"

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    qa_dropout: float = 0.1
    seq_classif_dropout: float = 0.2
    pad_token_id: int | None = 0

    # transformers' generic names for the same fields (its attribute_map), for code written against any config
    hidden_size = property(lambda self: self.dim)
    num_attention_heads = property(lambda self: self.n_heads)
    num_hidden_layers = property(lambda self: self.n_layers)

    def validate(self) -> None:
        super().validate()
        if self.dim % self.n_heads:
            raise ConfigError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}; fix config.json")
