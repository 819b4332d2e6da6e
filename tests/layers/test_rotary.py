"""zoo/layers/rotary.py against transformers' rotary embeddings on the same configs.

Every variant transformers 5 knows for the Llama family (default, linear, dynamic, llama3, yarn with and without
attention_factor / mscale / truncate / an implicit factor, longrope short and long) and partial rotary is built
twice: once with transformers (LlamaConfig / PhiConfig and their RotaryEmbedding classes) and once with zoo from a
zoo Config carrying the same keys, written both as transformers 5's ``rope_parameters`` and as the legacy
``rope_scaling`` + ``rope_theta`` (+ ``partial_rotary_factor``) of older config.json files. inv_freq,
attention_scaling and cos/sin are compared after every call of a call sequence (dynamic and longrope keep state:
growth past the original length, a shorter-but-still-long prompt, the reset, a decoding step), on positions that
include left-padded rows and positions far past the original maximum. apply_rotary is compared with transformers'
apply_rotary_pos_emb (Llama's for a full rotation, GPT-NeoX's for partial). The loader path (meta build, buffers
materialised in bf16, _init_weights -> reset_parameters) is run through from_pretrained.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import transformers
from safetensors.torch import save_file
from torch import nn
from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb as hf_apply_partial
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as hf_apply
from transformers.models.phi.modeling_phi import PhiRotaryEmbedding
from transformers.models.phi3.modeling_phi3 import Phi3RotaryEmbedding

from zoo.configuration import Config
from zoo.errors import ConfigError
from zoo.layers.rotary import ROPE_TYPES, RotaryEmbedding, apply_rotary, rope_parameters
from zoo.modeling import PreTrainedModel, empty_weights

ATOL = 1e-6
HIDDEN, HEADS = 128, 4  # head_dim 32: 16 frequencies, enough for yarn's ramp and llama3's three bands
ORIGINAL, LONG_MAX = 64, 256

#: Variant -> (rope settings without rope_theta, extra config fields).
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({"rope_type": "default"}, {}),
    "linear": ({"rope_type": "linear", "factor": 2.5}, {}),
    "dynamic": ({"rope_type": "dynamic", "factor": 3.0}, {}),
    "llama3": ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": ORIGINAL}, {"max_position_embeddings": LONG_MAX}),
    "yarn": ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIGINAL},
             {"max_position_embeddings": LONG_MAX}),
    "yarn-attention-factor-betas": ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIGINAL,
                                     "attention_factor": 0.8, "beta_fast": 16, "beta_slow": 2},
                                    {"max_position_embeddings": LONG_MAX}),
    "yarn-mscale": ({"rope_type": "yarn", "factor": 40.0, "original_max_position_embeddings": ORIGINAL,
                     "mscale": 0.707, "mscale_all_dim": 1.0}, {"max_position_embeddings": LONG_MAX}),
    "yarn-no-truncate": ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIGINAL,
                          "truncate": False}, {"max_position_embeddings": LONG_MAX}),
    "yarn-implicit-factor": ({"rope_type": "yarn", "factor": None, "original_max_position_embeddings": ORIGINAL},
                             {"max_position_embeddings": LONG_MAX}),
    "longrope": ({"rope_type": "longrope", "original_max_position_embeddings": ORIGINAL,
                  "short_factor": [1.0 + 0.05 * i for i in range(16)],
                  "long_factor": [1.0 + 0.9 * i for i in range(16)]}, {"max_position_embeddings": LONG_MAX}),
    "longrope-factor-attention": ({"rope_type": "longrope", "original_max_position_embeddings": ORIGINAL,
                                   "factor": 2.0, "attention_factor": 1.3,
                                   "short_factor": [1.0] * 16, "long_factor": [2.0 + i for i in range(16)]},
                                  {"max_position_embeddings": LONG_MAX}),
}
THETAS = {"default": 10000.0, "linear": 500000.0, "llama3": 500000.0, "yarn-mscale": 1000000}


def _theta(name: str) -> float:
    return THETAS.get(name, 10000.0)


def _left_padded(lengths: list[int], width: int) -> torch.Tensor:
    """Position ids as generate() builds them for a left-padded batch: cumsum of the mask - 1, pads at 1."""
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, width - n:] = 1
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)


#: A call sequence: short prompts, padded rows, growth past the original length, a longer one, a shorter one that
#: is still long, back under the original length (dynamic's reset), decoding steps on both sides.
POSITIONS = [
    torch.arange(20).expand(2, 20),
    _left_padded([7, 12], 12),
    torch.arange(90, 130).expand(2, 40),
    torch.arange(0, 200).expand(1, 200),
    torch.arange(40, 150).expand(2, 110),
    torch.arange(30).expand(2, 30),
    torch.tensor([[150], [37]]),
    torch.tensor([[5], [9]]),
]


def _hf_config(settings: dict[str, Any], theta: float, legacy: bool, **fields: Any) -> transformers.LlamaConfig:
    base = dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=2, intermediate_size=64,
                max_position_embeddings=ORIGINAL, num_hidden_layers=1, vocab_size=32)
    base.update(fields)
    if legacy:  # a config.json written before transformers 5
        return transformers.LlamaConfig.from_dict({**base, "rope_scaling": dict(settings), "rope_theta": theta})
    return transformers.LlamaConfig(**base, rope_parameters={**settings, "rope_theta": theta})


def _zoo_config(settings: dict[str, Any], theta: float, legacy: bool, **fields: Any) -> Config:
    base = dict(hidden_size=HIDDEN, num_attention_heads=HEADS, max_position_embeddings=ORIGINAL)
    base.update(fields)
    if legacy:
        return Config(**base, rope_scaling=json.loads(json.dumps(settings)), rope_theta=theta)
    return Config(**base, rope_parameters={**json.loads(json.dumps(settings)), "rope_theta": theta})


def _assert_same_state(zoo_rope: RotaryEmbedding, hf_rope: nn.Module, positions: torch.Tensor,
                       dtype: torch.dtype = torch.float32) -> None:
    x = torch.zeros(1, dtype=dtype)
    hf_cos, hf_sin = hf_rope(x, positions)
    cos, sin = zoo_rope(x, positions)
    assert cos.shape == sin.shape == (*positions.shape, zoo_rope.rotary_dim)
    assert cos.dtype == sin.dtype == dtype
    assert zoo_rope.inv_freq.dtype == torch.float32
    torch.testing.assert_close(zoo_rope.inv_freq, hf_rope.inv_freq.float(), atol=ATOL, rtol=0)
    assert zoo_rope.attention_scaling == pytest.approx(float(hf_rope.attention_scaling), abs=1e-12)
    torch.testing.assert_close(cos, hf_cos, atol=ATOL, rtol=0)
    torch.testing.assert_close(sin, hf_sin, atol=ATOL, rtol=0)


# --- every variant, both spellings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["rope_parameters", "rope_scaling"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_matches_transformers(name: str, legacy: bool) -> None:
    settings, fields = VARIANTS[name]
    if legacy and settings["rope_type"] != "default":  # the legacy files also used "type" for "rope_type"
        settings = {("type" if key == "rope_type" else key): value for key, value in settings.items()}
    hf_config = _hf_config(settings, _theta(name), legacy, **fields)
    zoo_config = _zoo_config(settings, _theta(name), legacy, **fields)
    assert rope_parameters(zoo_config) == hf_config.rope_parameters

    hf_rope = LlamaRotaryEmbedding(hf_config)
    zoo_rope = RotaryEmbedding(zoo_config)
    torch.testing.assert_close(zoo_rope.inv_freq, hf_rope.inv_freq, atol=ATOL, rtol=0)
    torch.testing.assert_close(zoo_rope.original_inv_freq, hf_rope.original_inv_freq, atol=ATOL, rtol=0)
    for positions in POSITIONS:
        _assert_same_state(zoo_rope, hf_rope, positions)


def test_variants_change_frequencies() -> None:
    """Each scaled variant's frequencies differ from plain RoPE (so the comparisons above would see a lost key)."""
    plain = RotaryEmbedding(_zoo_config({"rope_type": "default"}, 10000.0, False)).inv_freq
    for name, (settings, fields) in VARIANTS.items():
        if name == "default" or settings["rope_type"] == "dynamic":
            continue
        rope = RotaryEmbedding(_zoo_config(settings, 10000.0, False, **fields))
        assert not torch.allclose(rope.inv_freq, plain) or rope.attention_scaling != 1.0, name


def test_dynamic_grows_and_resets() -> None:
    rope = RotaryEmbedding(_zoo_config(VARIANTS["dynamic"][0], 10000.0, False))
    start = rope.inv_freq.clone()
    rope(torch.zeros(1), torch.arange(ORIGINAL)[None])  # exactly the original length: unchanged
    torch.testing.assert_close(rope.inv_freq, start, atol=0, rtol=0)
    rope(torch.zeros(1), torch.arange(3 * ORIGINAL)[None])
    grown = rope.inv_freq.clone()
    assert (grown[1:] < start[1:]).all() and rope.max_seq_len_cached == 3 * ORIGINAL
    rope(torch.zeros(1), torch.arange(2 * ORIGINAL)[None])  # shorter but still long: keeps the larger base
    torch.testing.assert_close(rope.inv_freq, grown, atol=0, rtol=0)
    rope(torch.zeros(1), torch.arange(10)[None])
    torch.testing.assert_close(rope.inv_freq, start, atol=0, rtol=0)
    assert rope.max_seq_len_cached == ORIGINAL


def test_longrope_picks_factors_by_length() -> None:
    settings, fields = VARIANTS["longrope"]
    rope = RotaryEmbedding(_zoo_config(settings, 10000.0, False, **fields))
    short, long = rope.inv_freq.clone(), rope.long_inv_freq.clone()
    assert not torch.allclose(short, long)
    address = rope.inv_freq.data_ptr()
    rope(torch.zeros(1), torch.arange(ORIGINAL + 1)[None])
    torch.testing.assert_close(rope.inv_freq, long, atol=0, rtol=0)
    rope(torch.zeros(1), torch.arange(ORIGINAL)[None])
    torch.testing.assert_close(rope.inv_freq, short, atol=0, rtol=0)
    assert rope.inv_freq.data_ptr() == address  # switched in place


class _Phi3StyleConfig(Config):
    """A config class that declares original_max_position_embeddings at the top level, as Phi-3's does."""

    original_max_position_embeddings: int | None = None
    partial_rotary_factor: float = 1.0


def test_top_level_original_max() -> None:
    """A top-level original_max_position_embeddings wins over the dict's, as in transformers once the model is built:
    Phi3Config declares the field; LlamaConfig keeps it as an extra key, which its rope init functions then apply."""
    settings, _ = VARIANTS["longrope"]
    settings = {**settings, "original_max_position_embeddings": 32}
    fields = {"max_position_embeddings": LONG_MAX, "original_max_position_embeddings": ORIGINAL}
    data = dict(hidden_size=HIDDEN, num_attention_heads=HEADS, rope_scaling=settings, **fields)
    hf_llama = _hf_config(settings, 10000.0, True, **fields)
    hf_phi3 = transformers.Phi3Config.from_dict({**json.loads(json.dumps(data)), "intermediate_size": 64,
                                                 "vocab_size": 32})  # a copy: transformers fills the dict it gets
    pairs = [(_zoo_config(settings, 10000.0, True, **fields), hf_llama, LlamaRotaryEmbedding(hf_llama)),
             (_Phi3StyleConfig(**json.loads(json.dumps(data))), hf_phi3, Phi3RotaryEmbedding(hf_phi3))]
    for zoo_config, hf_config, hf_rope in pairs:
        assert rope_parameters(zoo_config)["original_max_position_embeddings"] == ORIGINAL
        assert rope_parameters(zoo_config) == hf_config.rope_parameters
        zoo_rope = RotaryEmbedding(zoo_config)
        for positions in (torch.arange(50)[None], torch.arange(70)[None], torch.arange(20)[None]):  # 32 < 50 < 64
            _assert_same_state(zoo_rope, hf_rope, positions)


# --- partial rotary --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor, rotary_dim", [(0.5, 16), (0.3, 10)])  # 32 * 0.3 -> 9, rounded up as transformers
@pytest.mark.parametrize("legacy", [False, True], ids=["rope_parameters", "top-level"])
def test_partial_rotary_default(legacy: bool, factor: float, rotary_dim: int) -> None:
    hf_config = transformers.PhiConfig(hidden_size=HIDDEN, num_attention_heads=HEADS, intermediate_size=64,
                                       partial_rotary_factor=factor, max_position_embeddings=ORIGINAL, vocab_size=32)
    if legacy:
        zoo_config = Config(hidden_size=HIDDEN, num_attention_heads=HEADS, max_position_embeddings=ORIGINAL,
                            partial_rotary_factor=factor, rope_theta=10000.0)
    else:
        zoo_config = Config(hidden_size=HIDDEN, num_attention_heads=HEADS, max_position_embeddings=ORIGINAL,
                            rope_parameters={"rope_type": "default", "partial_rotary_factor": factor})
    assert rope_parameters(zoo_config) == hf_config.rope_parameters
    hf_rope, zoo_rope = PhiRotaryEmbedding(hf_config), RotaryEmbedding(zoo_config)
    assert zoo_rope.rotary_dim == rotary_dim and zoo_rope.inv_freq.shape == (rotary_dim // 2,)
    for positions in POSITIONS:
        _assert_same_state(zoo_rope, hf_rope, positions)
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 12, 32), torch.randn(2, 2, 12, 32)
    cos, sin = zoo_rope(torch.zeros(1), POSITIONS[1])
    for ours, theirs in zip(apply_rotary(q, k, cos, sin), hf_apply_partial(q, k, cos, sin)):
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["linear", "dynamic", "yarn", "llama3"])
def test_partial_rotary_scaled(name: str) -> None:
    """Scaled variants count the partial factor in their frequencies (transformers' ROPE_INIT_FUNCTIONS do)."""
    settings, fields = VARIANTS[name]
    settings = {**settings, "partial_rotary_factor": 0.5}
    hf_rope = LlamaRotaryEmbedding(_hf_config(settings, 10000.0, False, **fields))
    zoo_rope = RotaryEmbedding(_zoo_config(settings, 10000.0, False, **fields))
    assert zoo_rope.rotary_dim == 16
    for positions in POSITIONS:
        _assert_same_state(zoo_rope, hf_rope, positions)


def test_explicit_head_dim() -> None:
    config = _zoo_config({"rope_type": "default"}, 10000.0, False, head_dim=48)
    assert RotaryEmbedding(config).rotary_dim == 48
    assert RotaryEmbedding(config, head_dim=24).inv_freq.shape == (12,)


# --- apply_rotary ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_apply_rotary_matches_transformers(factor: float) -> None:
    torch.manual_seed(0)
    config = _zoo_config({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIGINAL}, 10000.0,
                         False, max_position_embeddings=LONG_MAX, partial_rotary_factor=factor)
    rope = RotaryEmbedding(config)
    positions = _left_padded([5, 9], 9) + 100
    cos, sin = rope(torch.zeros(1), positions)
    q, k = torch.randn(2, 4, 9, 32), torch.randn(2, 2, 9, 32)  # grouped-query: fewer key heads
    q_before, k_before = q.clone(), k.clone()
    q_out, k_out = apply_rotary(q, k, cos, sin)
    expected = hf_apply(q, k, cos, sin) if factor == 1.0 else hf_apply_partial(q, k, cos, sin)
    torch.testing.assert_close(q_out, expected[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(k_out, expected[1], atol=ATOL, rtol=0)
    assert torch.equal(q, q_before) and torch.equal(k, k_before)  # inputs untouched
    rotary = rope.rotary_dim
    assert torch.equal(q_out[..., rotary:], q[..., rotary:]) and torch.equal(k_out[..., rotary:], k[..., rotary:])
    assert not torch.allclose(q_out[..., :rotary], q[..., :rotary])


def test_apply_rotary_is_relative() -> None:
    """q.k after rotation depends on the distance between positions only (RoPE's point), scaling aside."""
    rope = RotaryEmbedding(_zoo_config({"rope_type": "default"}, 10000.0, False))
    torch.manual_seed(1)
    q, k = torch.randn(1, 1, 1, 32), torch.randn(1, 1, 1, 32)
    scores = []
    for start in (0, 17, 300):
        cos_q, sin_q = rope(torch.zeros(1), torch.tensor([[start + 5]]))
        cos_k, sin_k = rope(torch.zeros(1), torch.tensor([[start]]))
        q_rot, _ = apply_rotary(q, q, cos_q, sin_q)
        k_rot, _ = apply_rotary(k, k, cos_k, sin_k)
        scores.append((q_rot * k_rot).sum())
    torch.testing.assert_close(torch.stack(scores), scores[0].expand(3), atol=1e-4, rtol=0)


# --- dtypes and the loader -------------------------------------------------------------------------------------------


def test_bf16_cos_sin() -> None:
    settings, fields = VARIANTS["yarn"]
    hf_rope = LlamaRotaryEmbedding(_hf_config(settings, 10000.0, False, **fields))
    zoo_rope = RotaryEmbedding(_zoo_config(settings, 10000.0, False, **fields))
    for positions in POSITIONS[:3]:
        _assert_same_state(zoo_rope, hf_rope, positions, dtype=torch.bfloat16)


def test_cos_sin_is_forward_without_update() -> None:
    settings, fields = VARIANTS["llama3"]
    rope = RotaryEmbedding(_zoo_config(settings, 10000.0, False, **fields))
    positions = torch.tensor([[201], [3]])
    cos, sin = rope.cos_sin(positions, dtype=torch.float16)
    expected = rope(torch.zeros(1, dtype=torch.float16), positions)
    assert torch.equal(cos, expected[0]) and torch.equal(sin, expected[1]) and cos.dtype == torch.float16


@pytest.mark.parametrize("name", ["default", "dynamic", "yarn-mscale", "longrope"])
def test_reset_parameters(name: str) -> None:
    settings, fields = VARIANTS[name]
    config = _zoo_config(settings, _theta(name), False, **fields)
    hf_rope = LlamaRotaryEmbedding(_hf_config(settings, _theta(name), False, **fields))
    # zeroed in place: recomputed, same storage
    rope = RotaryEmbedding(config)
    address = rope.inv_freq.data_ptr()
    for buffer in rope.buffers():
        buffer.zero_()
    rope.attention_scaling = 0.0
    rope.reset_parameters()
    assert rope.inv_freq.data_ptr() == address
    for positions in POSITIONS:
        _assert_same_state(rope, hf_rope, positions)
    # built on meta, materialised in bf16 as the loader does: float32 again
    with empty_weights():
        rope = RotaryEmbedding(config)
    assert rope.inv_freq.is_meta
    for key, buffer in list(rope.named_buffers()):
        rope._buffers[key] = torch.zeros(buffer.shape, dtype=torch.bfloat16)
    rope.reset_parameters()
    assert all(buffer.dtype == torch.float32 and not buffer.is_meta for buffer in rope.buffers())
    hf_rope = LlamaRotaryEmbedding(_hf_config(settings, _theta(name), False, **fields))
    for positions in POSITIONS:
        _assert_same_state(rope, hf_rope, positions, dtype=torch.bfloat16)


class _RopeHolder(PreTrainedModel):
    """The smallest model that loads: one Linear from the checkpoint, rotary frequencies from _init_weights."""

    config_class = Config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.proj = nn.Linear(4, 4, bias=False)
        self.rotary_emb = RotaryEmbedding(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, RotaryEmbedding):
            module.reset_parameters()
        else:
            super()._init_weights(module)


def test_from_pretrained_bf16_keeps_float32_frequencies(tmp_path) -> None:
    """transformers 5 loads a bf16 model with float32 inv_freq; zoo's loader path ends the same way."""
    settings, fields = VARIANTS["llama3"]
    config = _zoo_config(settings, 500000.0, False, **fields)
    (tmp_path / "config.json").write_text(json.dumps({k: getattr(config, k) for k in
                                                      ("hidden_size", "num_attention_heads", "max_position_embeddings",
                                                       "rope_parameters")}))
    save_file({"proj.weight": torch.randn(4, 4)}, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model = _RopeHolder.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert model.proj.weight.dtype == torch.bfloat16
    hf_rope = LlamaRotaryEmbedding(_hf_config(settings, 500000.0, False, **fields))
    assert model.rotary_emb.inv_freq.dtype == torch.float32
    _assert_same_state(model.rotary_emb, hf_rope, POSITIONS[3], dtype=torch.bfloat16)


# --- rope_parameters and errors --------------------------------------------------------------------------------------


def test_rope_parameters_defaults_and_priority() -> None:
    plain = Config(hidden_size=HIDDEN, num_attention_heads=HEADS)
    assert rope_parameters(plain) == {"rope_type": "default", "rope_theta": 10000.0}
    both = Config(rope_scaling={"type": "linear", "factor": 2.0}, rope_parameters={"rope_type": "default"},
                  rope_theta=123.0)
    assert rope_parameters(both) == {"type": "linear", "factor": 2.0, "rope_type": "linear", "rope_theta": 123.0}
    # the dict's own theta wins over the top-level one, and the config is left as it was
    own = Config(rope_parameters={"rope_type": "default", "rope_theta": 7.0}, rope_theta=9.0)
    assert rope_parameters(own)["rope_theta"] == 7.0
    assert own.rope_parameters == {"rope_type": "default", "rope_theta": 7.0}
    hf = transformers.LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": 7.0}, rope_theta=9.0)
    assert hf.rope_parameters["rope_theta"] == 7.0


def test_unknown_rope_type() -> None:
    config = _zoo_config({"rope_type": "wobbly", "factor": 2.0}, 10000.0, False)
    with pytest.raises(ConfigError, match="wobbly") as info:
        RotaryEmbedding(config)
    assert all(name in str(info.value) for name in ROPE_TYPES)
    with pytest.raises(ConfigError, match="wobbly"):
        rope_parameters(_zoo_config({"type": "wobbly"}, 10000.0, True))


@pytest.mark.parametrize("settings, missing", [
    ({"rope_type": "linear"}, "factor"),
    ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0}, "high_freq_factor"),
    ({"type": "longrope", "short_factor": [1.0] * 16}, "long_factor"),
])
def test_missing_keys(settings: dict[str, Any], missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        rope_parameters(_zoo_config(settings, 10000.0, True))


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="short_factor has 3 entries"):
        RotaryEmbedding(_zoo_config({"rope_type": "longrope", "short_factor": [1.0] * 3, "long_factor": [1.0] * 16},
                                    10000.0, False))
    with pytest.raises(ConfigError, match="partial_rotary_factor"):
        RotaryEmbedding(_zoo_config({"rope_type": "default", "partial_rotary_factor": 1.5}, 10000.0, False))
    with pytest.raises(ConfigError, match="must be a dict"):
        rope_parameters(Config(rope_scaling="linear"))
    with pytest.raises(ConfigError, match="one dict per layer type"):
        rope_parameters(Config(rope_parameters={"full_attention": {"rope_type": "default"},
                                                "sliding_attention": {"rope_type": "linear", "factor": 2.0}}))
