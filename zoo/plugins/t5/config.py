"""Configs of the T5 family: T5Config, MT5Config, UMT5Config.

Field names and defaults are transformers 5.24's (models/{t5,mt5,umt5}/configuration_*.py), and the values those
classes derive are derived the same way here, so config.json files go both ways unchanged:

- ``num_decoder_layers`` (when unset) is ``num_layers``;
- ``feed_forward_proj`` is ``"{act}"`` or ``"gated-{act}"``: ``dense_act_fn`` is the activation's name and
  ``is_gated_act`` whether the MLP has a gate; ``"gated-gelu"`` means the tanh approximation (``gelu_new``), as the
  original T5.1.1 checkpoints were trained;
- ``scale_decoder_outputs``: whether the decoder output is multiplied by ``d_model ** -0.5`` before the vocabulary
  projection (Mesh TensorFlow's rescaling for tied embeddings). transformers 5 writes it next to a
  ``tie_word_embeddings`` it always sets True; a file without it (every published one) scales exactly when
  ``tie_word_embeddings`` is not false. transformers 5.24's MT5ForConditionalGeneration never scales, and MT5Config
  follows it.

``tie_word_embeddings`` here keeps its published meaning: whether ``lm_head`` is the shared embedding matrix (the
encoder's and decoder's ``embed_tokens`` always are). T5 ties by default; mT5 and umT5 checkpoints are untied.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zoo.activations import ACTIVATIONS
from zoo.config_fields import MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH, Field
from zoo.configuration import Config
from zoo.errors import ConfigError

__all__ = ["MT5Config", "T5Config", "UMT5Config", "parse_feed_forward_proj"]

PROBABILITY = dict(ge=0, le=1)


def parse_feed_forward_proj(value: str, owner: str = "T5Config") -> tuple[str, bool]:
    """``(dense_act_fn, is_gated_act)`` of a ``feed_forward_proj`` value, as transformers' ``__post_init__`` reads it."""
    parts = value.split("-")
    if (len(parts) > 1 and parts[0] != "gated") or len(parts) > 2:
        raise ConfigError(f"{owner}: feed_forward_proj is {value!r}, which is neither 'ACT' nor 'gated-ACT'; write it "
                          f"like 'relu', 'gated-gelu' or 'gated-silu' in config.json")
    act = "gelu_new" if value == "gated-gelu" else parts[-1]
    if act not in ACTIVATIONS:
        raise ConfigError(f"{owner}: feed_forward_proj {value!r} names the activation {act!r}, which zoo does not "
                          f"have (supported: {', '.join(sorted(ACTIVATIONS))}); fix feed_forward_proj in config.json")
    return act, parts[0] == "gated"


class T5Config(Config):
    """transformers' T5Config (T5, T5 v1.1, Flan-T5, ...)."""

    model_type: ClassVar[str] = "t5"
    attribute_map: ClassVar[dict[str, str]] = {
        "hidden_size": "d_model", "num_attention_heads": "num_heads", "num_hidden_layers": "num_layers",
        "head_dim": "d_kv"}

    vocab_size: int = Field(32128, ge=1, le=MAX_VOCAB)
    d_model: int = Field(512, ge=1, le=MAX_WIDTH)
    d_kv: int = Field(64, ge=1, le=MAX_WIDTH)
    d_ff: int = Field(2048, ge=1, le=MAX_WIDTH)
    num_layers: int = Field(6, ge=1, le=MAX_LAYERS)
    num_decoder_layers: int | None = Field(None, ge=1, le=MAX_LAYERS)
    num_heads: int = Field(8, ge=1, le=MAX_HEADS)
    relative_attention_num_buckets: int = Field(32, ge=2, le=MAX_POSITIONS)
    relative_attention_max_distance: int = Field(128, ge=1, le=MAX_POSITIONS)
    dropout_rate: float = Field(0.1, **PROBABILITY)
    classifier_dropout: float = Field(0.0, **PROBABILITY)
    layer_norm_epsilon: float = Field(1e-6, gt=0, le=1)
    initializer_factor: float = Field(1.0, ge=0, le=100)
    feed_forward_proj: str = "relu"
    # derived from feed_forward_proj in validate (transformers writes both to config.json)
    dense_act_fn: str | None = None
    is_gated_act: bool | None = None
    is_encoder_decoder: bool = True
    is_decoder: bool = False
    use_cache: bool = True
    tie_word_embeddings: bool = True
    scale_decoder_outputs: bool | None = None
    pad_token_id: int | None = Field(0, ge=0, lt="vocab_size")
    eos_token_id: int | list[int] | None = 1
    decoder_start_token_id: int | None = Field(0, ge=0, lt="vocab_size")
    task_specific_params: dict | None = None

    def __init__(self, **kwargs: Any) -> None:
        # derived, never read: transformers recomputes both from feed_forward_proj, so a stale pair cannot disagree
        kwargs.pop("dense_act_fn", None)
        kwargs.pop("is_gated_act", None)
        super().__init__(**kwargs)

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        self.dense_act_fn, self.is_gated_act = parse_feed_forward_proj(self.feed_forward_proj, name)
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self._default_scaling()
        if self.relative_attention_num_buckets < 4:
            raise ConfigError(f"{name}: relative_attention_num_buckets is {self.relative_attention_num_buckets}; "
                              f"the encoder splits the buckets into two directions of exact and logarithmic halves, "
                              f"so at least 4 are needed: fix it in config.json")

    def _default_scaling(self) -> bool:
        return self.tie_word_embeddings is not False


class MT5Config(T5Config):
    """transformers' MT5Config (multilingual T5): T5 v1.1's gated-GELU layout over a 250k vocabulary."""

    model_type: ClassVar[str] = "mt5"

    vocab_size: int = 250112
    d_ff: int = 1024
    num_layers: int = 8
    num_heads: int = 6
    feed_forward_proj: str = "gated-gelu"
    tie_word_embeddings: bool = False

    def _default_scaling(self) -> bool:
        return False  # transformers 5.24's MT5ForConditionalGeneration has no rescaling


class UMT5Config(MT5Config):
    """transformers' UMT5Config: mT5's shapes, and every attention layer with its own relative position bias."""

    model_type: ClassVar[str] = "umt5"

    def _default_scaling(self) -> bool:
        return self.tie_word_embeddings is not False
