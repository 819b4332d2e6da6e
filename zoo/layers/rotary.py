"""Rotary position embeddings (RoPE) and the scalings that stretch them past the pre-training context.

RoPE (Su et al., "RoFormer", arXiv:2104.09864) rotates each pair of query/key channels by an angle proportional to the
token's position, so attention scores depend on relative positions only. The variants change the per-pair
frequencies (``inv_freq``) and sometimes scale the cos/sin tables:

- ``default``: ``theta ** (-2i / d)``;
- ``linear``: position interpolation, every frequency divided by ``factor`` (kaiokendev; Chen et al. 2023);
- ``dynamic``: NTK-aware scaling whose base grows with the longest position seen (bloc97 / emozilla);
- ``yarn``: per-band blend of interpolated and extrapolated frequencies plus an attention factor (arXiv:2309.00071);
- ``longrope``: per-pair rescale factors, one list for short and one for long inputs (arXiv:2402.13753, Phi-3);
- ``llama3``: Llama 3.1's wavelength-banded interpolation.

The reference is transformers' ``modeling_rope_utils.py`` (``ROPE_INIT_FUNCTIONS``, ``dynamic_rope_update``,
``RotaryEmbeddingConfigMixin.standardize_rope_params``) and ``models/llama/modeling_llama.py``
(``LlamaRotaryEmbedding``, ``rotate_half``, ``apply_rotary_pos_emb``). The arithmetic follows theirs op for op, in
float32, so cos/sin agree to the last bit or so on the same device; the rotation uses the rotate-half layout (the
first half of the rotary channels pairs with the second half), and a partial rotary factor leaves the trailing
channels unrotated, as GPT-NeoX and Phi do.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import torch
from torch import nn

from zoo.errors import ConfigError

__all__ = ["ROPE_TYPES", "RotaryEmbedding", "apply_rotary", "rope_parameters", "rotate_half"]

logger = logging.getLogger(__name__)

#: rope_type values zoo computes; the frequency function of each is in _FREQUENCIES below.
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")
DEFAULT_THETA = 10000.0
#: Keys a variant cannot do without (transformers' validate_rope refuses configs that lack them, too).
_REQUIRED = {
    "linear": ("factor",),
    "dynamic": ("factor",),
    "yarn": ("factor",),
    "longrope": ("short_factor", "long_factor"),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor"),
}
#: Variants measured against the pre-training length; it defaults to max_position_embeddings when unset.
_NEED_ORIGINAL_MAX = ("llama3", "yarn", "longrope")


# --- config ----------------------------------------------------------------------------------------------------------


def rope_parameters(config: Any) -> dict[str, Any]:
    """The rope settings of ``config`` as one flat dict, standardised as transformers 5 does.

    Reads ``config.rope_parameters`` (transformers 5) or the legacy ``config.rope_scaling`` (which wins when both are
    set, as in transformers), then fills ``rope_theta`` from ``config.rope_theta`` (default 10000.0, or the config
    class's ``default_theta``), ``partial_rotary_factor`` from ``config.partial_rotary_factor``, ``rope_type`` from the
    legacy key ``type`` (``"default"`` when neither is set) and, for llama3 / yarn / longrope,
    ``original_max_position_embeddings`` from a top-level field of that name (Phi-3 keeps it there), else the dict's
    own value, else ``max_position_embeddings``. The config is not modified. An unknown rope_type or a missing key of
    the variant is a :class:`~zoo.errors.ConfigError`.
    """
    legacy = getattr(config, "rope_scaling", None)
    current = getattr(config, "rope_parameters", None)
    source = legacy or current or {}
    name = "rope_scaling" if legacy else "rope_parameters"
    if not isinstance(source, dict):
        raise ConfigError(f"config.{name} must be a dict (a JSON object) of rope settings, got "
                          f"{type(source).__name__} {source!r}; write it like "
                          '{"rope_type": "linear", "factor": 2.0}, or null for plain RoPE')
    if "rope_type" not in source and "type" not in source and any(isinstance(v, dict) for v in source.values()):
        raise ConfigError(f"config.{name} holds one dict per layer type ({', '.join(sorted(source))}); zoo's "
                          "RotaryEmbedding reads one flat set of rope settings, so build one per layer type from "
                          "that layer's dict")
    params = copy.deepcopy(source)  # the config keeps its own dict, lists included
    params["rope_type"] = params.get("rope_type") or params.get("type") or "default"
    if params.get("rope_theta") is None:
        theta = getattr(config, "rope_theta", None)
        params["rope_theta"] = theta if theta is not None else getattr(config, "default_theta", DEFAULT_THETA)
    partial = getattr(config, "partial_rotary_factor", None)
    if params.get("partial_rotary_factor") is None and partial is not None:
        params["partial_rotary_factor"] = partial

    rope_type = params["rope_type"]
    if rope_type not in ROPE_TYPES:
        raise ConfigError(f"rope_type '{rope_type}' in config.{name} is not supported (supported: "
                          f"{', '.join(ROPE_TYPES)}); set rope_type to one of them, or use a plugin that provides "
                          f"'{rope_type}'")
    missing = [key for key in _REQUIRED.get(rope_type, ()) if key not in params]
    if missing:
        raise ConfigError(f"rope_type '{rope_type}' needs {', '.join(missing)} in config.{name}, found only "
                          f"{', '.join(sorted(params))}; add {' and '.join(missing)} to config.{name}")
    if rope_type in _NEED_ORIGINAL_MAX:
        # A top-level field wins over the dict's value (Phi-3 writes it there). transformers' LlamaConfig sets an
        # undeclared key only after standardising, but each rope init function standardises again, so by the time
        # the model is built the top-level value has won there too.
        top_level = getattr(config, "original_max_position_embeddings", None)
        if top_level is not None:
            params["original_max_position_embeddings"] = top_level
        elif params.get("original_max_position_embeddings") is None:
            params["original_max_position_embeddings"] = _max_positions(config, rope_type)
    return params


def _max_positions(config: Any, rope_type: str) -> int:
    value = getattr(config, "max_position_embeddings", None)
    if value is None:
        raise ConfigError(f"rope_type '{rope_type}' scales against the context length, but the config has no "
                          "max_position_embeddings; set max_position_embeddings (and original_max_position_embeddings "
                          "for yarn / longrope / llama3)")
    return value


# --- frequencies -----------------------------------------------------------------------------------------------------
# Each function returns (inv_freq float32 of shape (ceil(dim / 2),), attention scaling). ``base ** (arange / dim)``
# is written exactly as transformers writes it (a Python-number base raised to a float32 tensor), so the two agree.


def _exponents(dim: int, device: torch.device | None) -> torch.Tensor:
    return torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim  # (dim/2,)


def _default(params: dict[str, Any], dim: int, max_pos: int | None, device: torch.device | None,
             seq_len: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    return 1.0 / (params["rope_theta"] ** _exponents(dim, device)), 1.0


def _linear(params: dict[str, Any], dim: int, max_pos: int | None, device: torch.device | None,
            seq_len: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    # dividing the frequencies is dividing the positions (position interpolation), without touching position_ids
    inv_freq, _ = _default(params, dim, max_pos, device)
    return inv_freq / params["factor"], 1.0


def _dynamic(params: dict[str, Any], dim: int, max_pos: int | None, device: torch.device | None,
             seq_len: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    assert max_pos is not None, "RotaryEmbedding checks max_position_embeddings for dynamic"
    factor = params["factor"]
    # at build time in Python floats; in the forward on a tensor length, i.e. in float32, as transformers does
    length: int | torch.Tensor = max_pos if seq_len is None else torch.maximum(
        seq_len, torch.tensor(max_pos, dtype=seq_len.dtype, device=seq_len.device))
    base = params["rope_theta"] * ((factor * length / max_pos) - (factor - 1)) ** (dim / (dim - 2))
    return 1.0 / (base ** _exponents(dim, device)), 1.0


def _yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn(params: dict[str, Any], dim: int, max_pos: int | None, device: torch.device | None,
          seq_len: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    base = params["rope_theta"]
    original = params["original_max_position_embeddings"]
    factor = params["factor"]
    if factor is None:  # DeepSeek-V3 style: the factor is the ratio of the two lengths
        factor = _need(max_pos, "yarn") / original
    attention_factor = params.get("attention_factor")
    if attention_factor is None:
        mscale, mscale_all_dim = params.get("mscale"), params.get("mscale_all_dim")
        if mscale and mscale_all_dim:
            attention_factor = float(_yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all_dim))
        else:
            attention_factor = _yarn_mscale(factor)
    beta_fast = params.get("beta_fast") or 32
    beta_slow = params.get("beta_slow") or 1

    def correction_dim(rotations: float) -> float:
        # the channel index whose wavelength fits ``rotations`` times into the original context
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if params.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # a zero-width ramp would divide by zero

    pos_freqs = base ** (torch.arange(0, dim, 2).to(device=device, dtype=torch.float) / dim)  # (dim/2,)
    extrapolated = 1.0 / pos_freqs
    interpolated = 1.0 / (factor * pos_freqs)
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    keep = 1 - ramp.to(device=device, dtype=torch.float)  # 1: high-frequency band, kept as trained
    return interpolated * (1 - keep) + extrapolated * keep, attention_factor


def _longrope(params: dict[str, Any], dim: int, max_pos: int | None, device: torch.device | None,
              seq_len: int | None = None) -> tuple[torch.Tensor, float]:
    original = params["original_max_position_embeddings"]
    factor = params.get("factor")
    if factor is None:  # Phi-3 style: the factor is the ratio of the two lengths
        factor = _need(max_pos, "longrope") / original
    attention_factor = params.get("attention_factor")
    if attention_factor is None:
        attention_factor = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    long = seq_len is not None and seq_len > original
    ext = torch.tensor(params["long_factor" if long else "short_factor"], dtype=torch.float32, device=device)
    shape = torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim  # (dim/2,)
    return 1.0 / (ext * params["rope_theta"] ** shape), attention_factor


def _llama3(params: dict[str, Any], dim: int, max_pos: int | None, device: torch.device | None,
            seq_len: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    inv_freq, _ = _default(params, dim, max_pos, device)
    factor, low_factor, high_factor = params["factor"], params["low_freq_factor"], params["high_freq_factor"]
    original = params["original_max_position_embeddings"]
    low_wavelen, high_wavelen = original / low_factor, original / high_factor
    wavelen = 2 * math.pi / inv_freq  # (dim/2,)
    # long wavelengths are interpolated by factor, short ones kept, the band between blended smoothly
    scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (original / wavelen - low_factor) / (high_factor - low_factor)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, blended, scaled), 1.0


def _need(max_pos: int | None, rope_type: str) -> int:
    if max_pos is None:
        raise ConfigError(f"rope_type '{rope_type}' without a factor takes it from max_position_embeddings / "
                          "original_max_position_embeddings, but the config has no max_position_embeddings; set "
                          "factor in the rope settings or max_position_embeddings")
    return max_pos


_FREQUENCIES = {"default": _default, "linear": _linear, "dynamic": _dynamic, "yarn": _yarn, "longrope": _longrope,
                "llama3": _llama3}


# --- the module ------------------------------------------------------------------------------------------------------


class RotaryEmbedding(nn.Module):
    """cos/sin tables of one model's rotary embedding, shared by all its attention layers.

    ``inv_freq`` (a non-persistent buffer: checkpoints never hold it) is recomputed from the config by
    :meth:`reset_parameters`, which the loader reaches through the model's ``_init_weights``. ``dynamic`` and
    ``longrope`` change ``inv_freq`` in the forward from the longest position seen; ``original_inv_freq`` keeps the
    frequencies of the pre-training length to come back to.
    """

    inv_freq: torch.Tensor
    original_inv_freq: torch.Tensor

    def __init__(self, config: Any, head_dim: int | None = None, device: torch.device | str | None = None, *,
                 partial_with_default: bool = True) -> None:
        """``partial_with_default=False``: plain RoPE (rope_type "default") rotates every channel whatever
        ``partial_rotary_factor`` says, as transformers' Llama, Mistral and Qwen classes compute it (their default
        frequencies read ``head_dim`` alone); the scaled variants honour the factor either way."""
        super().__init__()
        self.rope = rope_parameters(config)
        self.rope_type: str = self.rope["rope_type"]
        if head_dim is None:
            head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.head_dim = head_dim
        factor = self.rope.get("partial_rotary_factor", 1.0)
        if not partial_with_default and self.rope_type == "default":
            factor = 1.0
        if not isinstance(factor, (int, float)) or not 0 < factor <= 1:
            raise ConfigError(f"partial_rotary_factor must be a number in (0, 1], got {factor!r}; it is the share "
                              "of each head's channels that RoPE rotates")
        # the dim of the frequency formulas, rounded as transformers rounds it; an odd one still gives ceil(dim / 2)
        # frequencies, so the cos/sin tables (and rotary_dim) are one channel wider
        self.frequency_dim = int(head_dim * factor)
        self.rotary_dim = self.frequency_dim + self.frequency_dim % 2
        if not 2 <= self.rotary_dim <= head_dim:
            raise ConfigError(f"head_dim {head_dim} x partial_rotary_factor {factor} gives {self.rotary_dim} rotary "
                              f"channels (an odd count rounded up); RoPE needs at least 2 and at most head_dim")
        self.max_position_embeddings: int | None = getattr(config, "max_position_embeddings", None)
        if self.rope_type == "dynamic":
            _max_positions(config, self.rope_type)
        if self.rope_type == "longrope":
            for key in ("short_factor", "long_factor"):
                if len(self.rope[key]) != self.rotary_dim // 2:
                    raise ConfigError(f"rope {key} has {len(self.rope[key])} entries but the rotary dimension "
                                      f"{self.rotary_dim} has {self.rotary_dim // 2} frequencies; the config's "
                                      "head_dim / partial_rotary_factor do not match its longrope factors")
        self._frequencies = _FREQUENCIES[self.rope_type]
        # dynamic: the longest sequence the current inv_freq was computed for, and the length it started from
        self.original_max_seq_len = self.max_position_embeddings
        self.max_seq_len_cached = self.max_position_embeddings

        device = torch.device(device) if device is not None else None
        inv_freq, self.attention_scaling = self._frequencies(self.rope, self.frequency_dim,
                                                             self.max_position_embeddings, device)
        self.attention_scaling = float(self.attention_scaling)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)
        if self.rope_type == "longrope":
            self.register_buffer("long_inv_freq", self._long_frequencies(device), persistent=False)

    def _long_frequencies(self, device: torch.device | None) -> torch.Tensor:
        # a Python length, not a tensor: this also runs on the meta device, where a tensor has no truth value
        longer = self.rope["original_max_position_embeddings"] + 1
        return _longrope(self.rope, self.frequency_dim, self.max_position_embeddings, device, longer)[0]

    def extra_repr(self) -> str:
        return f"rope_type={self.rope_type}, rotary_dim={self.rotary_dim}, theta={self.rope['rope_theta']}"

    def reset_parameters(self) -> None:
        """Recompute the frequencies from the config, in float32, on the buffers' device.

        The loader gives meta buffers real memory in the model's dtype (bf16, say) before calling this; the
        frequencies are replaced by float32 tensors then, as transformers 5's from_pretrained keeps ``inv_freq`` in
        float32 in a bf16 model (a bf16 ``inv_freq`` would shift every angle of a long sequence). A float32 buffer
        of the right shape is written in place, so its address stays (CUDA graphs replay from it).
        """
        device = self.inv_freq.device
        inv_freq, scaling = self._frequencies(self.rope, self.frequency_dim, self.max_position_embeddings, device)
        self.attention_scaling = float(scaling)
        self.max_seq_len_cached = self.max_position_embeddings
        fresh = {"inv_freq": inv_freq, "original_inv_freq": inv_freq.clone()}
        if self.rope_type == "longrope":
            fresh["long_inv_freq"] = self._long_frequencies(device)
        with torch.no_grad():
            for name, value in fresh.items():
                old = self._buffers.get(name)
                if old is not None and not old.is_meta and old.dtype == torch.float32 and old.shape == value.shape:
                    old.copy_(value)
                else:
                    self._buffers[name] = value.to(device)

    # --- forward ---------------------------------------------------------------------------------------------------

    def update_frequencies(self, position_ids: torch.Tensor) -> None:
        """``dynamic`` / ``longrope``: move ``inv_freq`` to the frequencies for the longest position in
        ``position_ids``, as transformers' ``dynamic_rope_update``. A no-op for the other variants."""
        if self.rope_type == "dynamic":
            self._dynamic_update(position_ids)
        elif self.rope_type == "longrope":
            seq_len = torch.max(position_ids) + 1
            original = self.rope["original_max_position_embeddings"]
            device = self.inv_freq.device
            # a tensor comparison, not a Python if: no device sync, and the buffer keeps its address
            chosen = torch.where(seq_len.to(device) > original, self.long_inv_freq.to(device),
                                 self.original_inv_freq.to(device))
            self.inv_freq.copy_(chosen)

    def _dynamic_update(self, position_ids: torch.Tensor) -> None:
        assert self.original_max_seq_len is not None and self.max_seq_len_cached is not None
        seq_len = torch.max(position_ids) + 1
        cached = self.max_seq_len_cached
        if seq_len > cached:  # longer than any so far: a larger base
            inv_freq, self.attention_scaling = self._frequencies(self.rope, self.frequency_dim,
                                                                 self.max_position_embeddings,
                                                                 self.inv_freq.device, seq_len)
            self._buffers["inv_freq"] = inv_freq
            self.max_seq_len_cached = int(seq_len)
        if seq_len < self.original_max_seq_len and cached > self.original_max_seq_len:
            # back within the trained length: the unscaled frequencies are the more precise ones
            self._buffers["inv_freq"] = self.original_inv_freq.to(self.inv_freq.device).clone()
            self.max_seq_len_cached = self.original_max_seq_len

    def cos_sin(self, position_ids: torch.Tensor, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for ``position_ids`` (B, T) from the current ``inv_freq``, without the dynamic update: the cheap
        path for a decoding step whose caller knows the frequencies cannot change (not dynamic / longrope)."""
        inv_freq = self.inv_freq.to(device=position_ids.device, dtype=torch.float)  # (R/2,)
        freqs = position_ids[..., None].float() * inv_freq  # (B, T, R/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, R): rotate-half layout, each angle twice
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=dtype), sin.to(dtype=dtype)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)``, each (B, T, rotary_dim) in ``x.dtype``, for ``position_ids`` (B, T); ``x`` gives only
        the dtype and device. Computed in float32 whatever the model's dtype, then cast."""
        self.update_frequencies(position_ids)
        return self.cos_sin(position_ids.to(x.device), dtype=x.dtype)


# --- applying it -----------------------------------------------------------------------------------------------------


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) over the last dimension: the 90-degree turn of each (i, i + d/2) channel pair."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate queries (B, Hq, T, D) and keys (B, Hk, T, D) by cos/sin (B, T, R), R <= D; new tensors.

    The first R channels of each head are rotated, the other D - R pass through unchanged (partial rotary).
    """
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, R): the same angles for every head
    rotary_dim = cos.shape[-1]
    if rotary_dim == q.shape[-1]:
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    q_rot, q_pass = q[..., :rotary_dim], q[..., rotary_dim:]  # (B, Hq, T, R), (B, Hq, T, D - R)
    k_rot, k_pass = k[..., :rotary_dim], k[..., rotary_dim:]
    q_out = torch.cat((q_rot * cos + rotate_half(q_rot) * sin, q_pass), dim=-1)  # (B, Hq, T, D)
    k_out = torch.cat((k_rot * cos + rotate_half(k_rot) * sin, k_pass), dim=-1)
    return q_out, k_out
