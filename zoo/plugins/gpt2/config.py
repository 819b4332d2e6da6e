"""GPT2Config: the fields of transformers' GPT2Config (configuration_gpt2.py), same names and defaults.

GPT-2 checkpoints use their own field names (``n_embd``, ``n_layer``, ``n_head``, ``n_positions``); the generic
names other code reads (``hidden_size``, ``num_hidden_layers``, ...) are aliases of those, as transformers'
``attribute_map`` makes them, and are never written to config.json.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zoo.activations import ACTIVATIONS
from zoo.configuration import Config
from zoo.errors import ConfigError

#: generic name -> GPT-2's name (transformers' GPT2Config.attribute_map)
ATTRIBUTE_MAP: dict[str, str] = {
    "hidden_size": "n_embd",
    "max_position_embeddings": "n_positions",
    "num_attention_heads": "n_head",
    "num_hidden_layers": "n_layer",
}


def _alias(name: str) -> property:
    return property(lambda self: getattr(self, name), lambda self, value: setattr(self, name, value))


class GPT2Config(Config):
    model_type: ClassVar[str] = "gpt2"

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    summary_type: str = "cls_index"
    summary_use_proj: bool = True
    summary_activation: str | None = None
    summary_proj_to_labels: bool = True
    summary_first_dropout: float = 0.1
    scale_attn_weights: bool = True
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = None
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    add_cross_attention: bool = False
    tie_word_embeddings: bool = True

    hidden_size = _alias("n_embd")
    max_position_embeddings = _alias("n_positions")
    num_attention_heads = _alias("n_head")
    num_hidden_layers = _alias("n_layer")

    def __init__(self, **kwargs: Any) -> None:
        for alias, name in ATTRIBUTE_MAP.items():
            if alias in kwargs:
                value = kwargs.pop(alias)
                if name in kwargs and kwargs[name] != value:
                    raise ConfigError(f"GPT2Config got both {alias}={value!r} and {name}={kwargs[name]!r}; "
                                      f"{alias} is another name for {name}, pass only one")
                kwargs[name] = value
        super().__init__(**kwargs)

    @property
    def inner_size(self) -> int:
        """Width of the MLP: ``n_inner``, or 4 x ``n_embd`` when unset (as GPT2Block reads it)."""
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def validate(self) -> None:
        super().validate()
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}; fix config.json")
        if self.activation_function not in ACTIVATIONS:
            raise ConfigError(f"activation_function {self.activation_function!r} is not supported (supported: "
                              f"{', '.join(sorted(ACTIVATIONS))}); fix config.json")
        if self.add_cross_attention:
            raise ConfigError("this config asks for cross-attention (add_cross_attention=true, an encoder-decoder "
                              "GPT-2); zoo's GPT-2 plugin provides the decoder-only model: set it to false")
