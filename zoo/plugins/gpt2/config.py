"""GPT2Config: the fields of transformers' GPT2Config (configuration_gpt2.py), same names and defaults.

GPT-2 checkpoints use their own field names (``n_embd``, ``n_layer``, ``n_head``, ``n_positions``); the generic
names other code reads (``hidden_size``, ``num_hidden_layers``, ...) are aliases of those, as transformers'
``attribute_map`` makes them, and are never written to config.json.
"""

from __future__ import annotations

from typing import ClassVar

from zoo.activations import ACTIVATIONS
from zoo.config_fields import MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH, Field
from zoo.configuration import Config
from zoo.errors import ConfigError

#: generic name -> GPT-2's name (transformers' GPT2Config.attribute_map)
ATTRIBUTE_MAP: dict[str, str] = {
    "hidden_size": "n_embd",
    "max_position_embeddings": "n_positions",
    "num_attention_heads": "n_head",
    "num_hidden_layers": "n_layer",
}
PROBABILITY = dict(ge=0, le=1)


class GPT2Config(Config):
    model_type: ClassVar[str] = "gpt2"
    attribute_map: ClassVar[dict[str, str]] = ATTRIBUTE_MAP

    vocab_size: int = Field(50257, ge=1, le=MAX_VOCAB)
    n_positions: int = Field(1024, ge=1, le=MAX_POSITIONS)
    n_embd: int = Field(768, ge=1, le=MAX_WIDTH, divisible_by="n_head")
    n_layer: int = Field(12, ge=1, le=MAX_LAYERS)
    n_head: int = Field(12, ge=1, le=MAX_HEADS)
    n_inner: int | None = Field(None, ge=1, le=MAX_WIDTH)
    activation_function: str = Field("gelu_new", choices=tuple(sorted(ACTIVATIONS)))
    resid_pdrop: float = Field(0.1, **PROBABILITY)
    embd_pdrop: float = Field(0.1, **PROBABILITY)
    attn_pdrop: float = Field(0.1, **PROBABILITY)
    layer_norm_epsilon: float = Field(1e-5, gt=0, le=1)
    initializer_range: float = Field(0.02, ge=0, le=10)
    summary_type: str = "cls_index"
    summary_use_proj: bool = True
    summary_activation: str | None = None
    summary_proj_to_labels: bool = True
    summary_first_dropout: float = Field(0.1, **PROBABILITY)
    scale_attn_weights: bool = True
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = None
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    add_cross_attention: bool = False
    tie_word_embeddings: bool = True

    @property
    def inner_size(self) -> int:
        """Width of the MLP: ``n_inner``, or 4 x ``n_embd`` when unset (as GPT2Block reads it)."""
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def validate(self) -> None:
        super().validate()
        if self.add_cross_attention:
            raise ConfigError("this config asks for cross-attention (add_cross_attention=true, an encoder-decoder "
                              "GPT-2); zoo's GPT-2 plugin provides the decoder-only model: set it to false")
