"""Configs of the Llama family: LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config.

Field names and defaults are transformers 5.24's (models/{llama,mistral,qwen2,qwen3}/configuration_*.py), and the
values those classes derive when a config is built are derived the same way here, so config.json files go both
ways unchanged:

- ``head_dim`` (when unset) is ``hidden_size // num_attention_heads`` and ``num_key_value_heads`` (when unset) is
  ``num_attention_heads``;
- rotary settings live in ``rope_parameters`` (``rope_type``, ``rope_theta`` and the scaling's own keys), as in
  transformers 5; the older spellings ``rope_theta`` / ``rope_scaling`` / ``partial_rotary_factor`` at the top level
  are read into it (transformers' ``RotaryEmbeddingConfigMixin.convert_rope_params_to_dict``) and never written;
- Qwen2/Qwen3 keep ``sliding_window`` only with ``use_sliding_window`` and derive ``layer_types`` from
  ``max_window_layers`` (layers from that index on slide); Mistral slides every layer when ``sliding_window`` is set.

What differs inside a decoder layer (biases, q/k norm) is in modeling.py; which layers slide is
:attr:`LlamaFamilyConfig.layer_windows`, read by the model.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from zoo.activations import ACTIVATIONS
from zoo.config_fields import MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH, Field
from zoo.configuration import Config
from zoo.errors import ConfigError
from zoo.layers.rotary import rope_parameters

__all__ = ["LlamaConfig", "LlamaFamilyConfig", "MistralConfig", "Qwen2Config", "Qwen3Config", "QwenConfig"]

PROBABILITY = dict(ge=0, le=1)
ACTIVATION_NAMES = tuple(sorted(ACTIVATIONS))
DEFAULT_ROPE_THETA = 10_000.0
LAYER_TYPES = ("full_attention", "sliding_attention")


class LlamaFamilyConfig(Config):
    """The fields the four families share, and the values transformers derives from them.

    Not registered itself: each family's class below sets ``model_type`` and its own defaults.
    """

    vocab_size: int = Field(32000, ge=1, le=MAX_VOCAB)
    hidden_size: int = Field(4096, ge=1, le=MAX_WIDTH)
    intermediate_size: int = Field(11008, ge=1, le=MAX_WIDTH)
    num_hidden_layers: int = Field(32, ge=1, le=MAX_LAYERS)
    num_attention_heads: int = Field(32, ge=1, le=MAX_HEADS)
    num_key_value_heads: int | None = Field(None, ge=1, le="num_attention_heads")
    head_dim: int | None = Field(None, ge=2, le=MAX_WIDTH)
    hidden_act: str = Field("silu", choices=ACTIVATION_NAMES)
    max_position_embeddings: int = Field(2048, ge=1, le=MAX_POSITIONS)
    initializer_range: float = Field(0.02, ge=0, le=1)
    rms_norm_eps: float = Field(1e-6, gt=0, le=1)
    use_cache: bool = True
    tie_word_embeddings: bool = False
    rope_parameters: dict | None = None
    attention_dropout: float = Field(0.0, **PROBABILITY)

    def __init__(self, **kwargs: Any) -> None:
        # transformers 4's spellings, read into rope_parameters (transformers 5 does the same and writes only that)
        rope_scaling = kwargs.pop("rope_scaling", None)
        legacy = {key: kwargs.pop(key) for key in ("rope_theta", "partial_rotary_factor") if key in kwargs}
        rope = rope_scaling or kwargs.get("rope_parameters")  # transformers' priority
        kwargs["rope_parameters"] = copy.deepcopy(rope) if rope is not None else None
        if isinstance(kwargs["rope_parameters"], dict):
            for key, value in legacy.items():
                kwargs["rope_parameters"].setdefault(key, value)
        elif kwargs["rope_parameters"] is None and legacy:
            kwargs["rope_parameters"] = dict(legacy)
        super().__init__(**kwargs)

    def validate(self) -> None:
        super().validate()
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"{type(self).__name__}: num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads}); every key/value head must serve the same number "
                f"of query heads: fix one of them in config.json")
        pad = self.pad_token_id
        if pad is not None and not -self.vocab_size <= pad < self.vocab_size:  # the embedding's padding row
            raise ConfigError(f"{type(self).__name__}: pad_token_id is {pad}, outside the vocabulary of "
                              f"{self.vocab_size} tokens; set pad_token_id to a token id (or null)")
        if self.head_dim < 2 or self.head_dim % 2:
            raise ConfigError(f"{type(self).__name__}: head_dim is {self.head_dim}, but rotary embeddings rotate pairs "
                              f"of channels: it must be even and >= 2; set head_dim (or hidden_size / "
                              f"num_attention_heads) to an even number")
        # rope_type and rope_theta always present, the scaling's keys checked (zoo/layers/rotary.py)
        self.rope_parameters = rope_parameters(self)

    # --- derived values ------------------------------------------------------------------------------------------

    @property
    def rope_theta(self) -> float:
        """The rotary base (transformers 4's top-level field; it lives in rope_parameters now)."""
        return float((self.rope_parameters or {}).get("rope_theta", DEFAULT_ROPE_THETA))

    @property
    def layer_windows(self) -> list[int | None]:
        """Per layer, the sliding window its attention keeps (None: every earlier position). No window here."""
        return [None] * self.num_hidden_layers


class LlamaConfig(LlamaFamilyConfig):
    """transformers' LlamaConfig (also Llama 2/3, TinyLlama, Vicuna, ...): biases on attention and MLP optional."""

    model_type: ClassVar[str] = "llama"

    hidden_size: int = Field(4096, ge=1, le=MAX_WIDTH, divisible_by="num_attention_heads")
    pad_token_id: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pretraining_tp: int | None = 1
    attention_bias: bool = False
    mlp_bias: bool = False


class MistralConfig(LlamaFamilyConfig):
    """transformers' MistralConfig: Llama with grouped-query attention and a sliding window on every layer."""

    model_type: ClassVar[str] = "mistral"

    intermediate_size: int = 14336
    num_key_value_heads: int | None = 8
    max_position_embeddings: int = 4096 * 32
    pad_token_id: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    sliding_window: int | None = Field(4096, ge=1, le=MAX_POSITIONS)

    @property
    def layer_windows(self) -> list[int | None]:
        """Every layer slides when sliding_window is set (transformers' MistralModel ignores ``layer_types``)."""
        return [self.sliding_window] * self.num_hidden_layers


class QwenConfig(LlamaFamilyConfig):
    """The fields Qwen2 and Qwen3 share: Qwen2's config, and Qwen3's without head_dim and attention_bias. Not
    registered itself (a Qwen3 config is not a Qwen2 one: the models differ)."""

    vocab_size: int = 151936
    intermediate_size: int = 22016
    num_key_value_heads: int | None = 32
    max_position_embeddings: int = 32768
    use_sliding_window: bool = False
    sliding_window: int | None = Field(4096, ge=1, le=MAX_POSITIONS)
    max_window_layers: int = Field(28, ge=0, le=MAX_LAYERS)
    layer_types: list[str] | None = Field(None, choices=LAYER_TYPES, min_len=1, max_len=MAX_LAYERS)
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def validate(self) -> None:
        super().validate()
        # as transformers' __post_init__: the window exists only when switched on, and says which layers use it
        if not self.use_sliding_window:
            self.sliding_window = None
        if self.layer_types is None:
            self.layer_types = ["sliding_attention" if self.sliding_window is not None and i >= self.max_window_layers
                                else "full_attention" for i in range(self.num_hidden_layers)]
        self.layer_types = list(self.layer_types)
        if len(self.layer_types) != self.num_hidden_layers:
            raise ConfigError(f"{type(self).__name__}: layer_types has {len(self.layer_types)} entries but the model "
                              f"has {self.num_hidden_layers} layers (num_hidden_layers); give one per layer")

    @property
    def layer_windows(self) -> list[int | None]:
        """sliding_window on the layers ``layer_types`` marks "sliding_attention", None on the others."""
        assert self.layer_types is not None  # derived in validate
        return [self.sliding_window if kind == "sliding_attention" else None for kind in self.layer_types]


class Qwen2Config(QwenConfig):
    """transformers' Qwen2Config: q/k/v biases, optional sliding window on the layers from max_window_layers on."""

    model_type: ClassVar[str] = "qwen2"


class Qwen3Config(QwenConfig):
    """transformers' Qwen3Config: Qwen2's fields plus head_dim (128 by default) and attention_bias; the model adds
    an RMSNorm over each query and key head."""

    model_type: ClassVar[str] = "qwen3"

    head_dim: int | None = 128
    attention_bias: bool = False
