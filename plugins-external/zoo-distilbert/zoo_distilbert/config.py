"""DistilBertConfig: the fields of transformers' DistilBertConfig, same names and defaults.

Each field declares what it may be (zoo.configuration.Field), so zoo checks a config.json when it is read, the
same way as for the built-in architectures.
"""

from __future__ import annotations

from typing import ClassVar

from zoo.config_fields import MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH
from zoo.configuration import Config, Field

PROBABILITY = dict(ge=0, le=1)


class DistilBertConfig(Config):
    model_type: ClassVar[str] = "distilbert"
    # transformers' generic names for the same fields (its attribute_map), for code written against any config
    attribute_map: ClassVar[dict[str, str]] = {"hidden_size": "dim", "num_attention_heads": "n_heads",
                                               "num_hidden_layers": "n_layers"}

    vocab_size: int = Field(30522, ge=1, le=MAX_VOCAB)
    max_position_embeddings: int = Field(512, ge=1, le=MAX_POSITIONS)
    sinusoidal_pos_embds: bool = False
    n_layers: int = Field(6, ge=1, le=MAX_LAYERS)
    n_heads: int = Field(12, ge=1, le=MAX_HEADS)
    dim: int = Field(768, ge=1, le=MAX_WIDTH, divisible_by="n_heads")
    hidden_dim: int = Field(3072, ge=1, le=MAX_WIDTH)
    dropout: float = Field(0.1, **PROBABILITY)
    attention_dropout: float = Field(0.1, **PROBABILITY)
    activation: str = "gelu"
    initializer_range: float = Field(0.02, ge=0, le=10)
    qa_dropout: float = Field(0.1, **PROBABILITY)
    seq_classif_dropout: float = Field(0.2, **PROBABILITY)
    # the embedding's padding row: an index into the vocabulary
    pad_token_id: int | None = Field(0, ge=0, lt="vocab_size")
