"""GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"), top to bottom:
Conv1D -> attention -> MLP -> block -> model -> heads.

Module and parameter names are those of the published checkpoints (transformers' modeling_gpt2.py), so loading
``transformer.h.0.attn.c_attn.weight`` is a lookup, and the weights keep the published layout (see GPT2Conv1D):
files written by ``save_pretrained`` are byte-compatible with transformers' in both directions. Attention runs
through ``torch.nn.functional.scaled_dot_product_attention``, with the key/value cache of zoo.generation; the
LM head inherits ``generate`` from :class:`zoo.generation.GenerationMixin`. As in transformers, a forward pass
returns its cache unless ``use_cache=False`` (``config.use_cache`` is the default), except under gradient
checkpointing in training, where the cache would be written twice (the backward pass replays each block).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo import gemm, native
from zoo.activations import get_activation
from zoo.generation import (SPLIT_MATMUL_MAX_ROWS, DecodingProjection, GenerationMixin, KVCache, causal_attention_mask,
                            decode_matmul, decoding_weight, forward_cache, has_forward_hooks, project_for_decoding)
from zoo.layers import Linear
from zoo.model_api import last_token_states
from zoo.modeling import GradientCheckpointingLayer, PreTrainedModel, classification_loss, span_loss
from zoo.outputs import ModelOutput, QuestionAnsweringOutput, TokenClassifierOutput
from zoo.plugins.gpt2.config import GPT2Config
from zoo.quantization import Int8Linear

logger = logging.getLogger(__name__)

#: Rows (sequences) up to which a decoding step runs through the native kernel; beyond, PyTorch's matrix-matrix
#: products make better use of each weight read (see benchmarks/bench_generate.py --batch).
NATIVE_MAX_ROWS = 8

# --- outputs -------------------------------------------------------------------------------------------------------------


# transformers' BaseModelOutputWithPastAndCrossAttentions and CausalLMOutputWithCrossAttentions: GPT-2 has no
# cross-attention here, and ``cross_attentions`` is the empty tuple whenever ``attentions`` are returned, as there,
# so ``to_tuple()`` has the same entries in both libraries. transformers 5 calls the cache ``cache``: both names read.


class _CacheAlias:
    @property
    def cache(self) -> KVCache | None:
        return self.past_key_values  # type: ignore[attr-defined]


@dataclass
class BaseModelOutputWithPast(_CacheAlias, ModelOutput):
    last_hidden_state: torch.Tensor
    past_key_values: KVCache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class CausalLMOutputWithPast(_CacheAlias, ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: KVCache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SequenceClassifierOutputWithPast(_CacheAlias, ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: KVCache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# --- Conv1D --------------------------------------------------------------------------------------------------------------


class GPT2Conv1D(nn.Module):
    """A linear layer whose weight is stored ``(in, out)``, the layout of OpenAI's checkpoints: ``x @ W + b``.

    Keeping the published layout rather than transposing into ``nn.Linear`` is both the simple choice (loading and
    saving are pure lookups, no adapter) and the fast one for decoding: at batch 1 every projection is a
    matrix-vector product bound by reading the weight, and on CPU (MKL) ``x @ W`` over the ``(in, out)`` weight
    streams it about 1.5x faster than ``F.linear`` over an ``(out, in)`` one; the row-major ``(in, out)`` layout
    also splits into contiguous per-thread blocks (zoo.generation.decode_matmul, benchmarks/bench_generate.py).
    """

    def __init__(self, nx: int, nf: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))  # (in, out)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor, activation: str | None = None) -> torch.Tensor:
        """``x @ W + b``, then ``activation`` (a config.json name) if given: a few rows (a decoding step) through
        decode_matmul's per-thread split, more through zoo.gemm (which may apply the activation in the product)."""
        rows = x.numel() // x.shape[-1]
        if rows > SPLIT_MATMUL_MAX_ROWS:
            return gemm.linear(x, self.weight, self.bias, activation=activation, in_out=True)  # (B, T, out)
        out = decode_matmul(x.reshape(-1, x.shape[-1]), self.weight, self.bias).view(*x.shape[:-1], self.nf)
        return get_activation(activation)(out) if activation is not None else out  # (B, T, out)


# --- attention -----------------------------------------------------------------------------------------------------------


class GPT2Attention(nn.Module):
    """Causal multi-head self-attention with a fused q/k/v projection (``c_attn``) and an output projection."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.layer_idx = layer_idx
        # scale_attn_weights: 1/sqrt(head_dim); scale_attn_by_inverse_layer_idx: also 1/(layer_idx + 1)
        self.scaling = self.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)
        # reorder_and_upcast_attn: scores and softmax in float32 when the model runs in half precision
        self.upcast = config.reorder_and_upcast_attn
        self.c_attn = GPT2Conv1D(config.n_embd, 3 * config.n_embd)
        self.c_proj = GPT2Conv1D(config.n_embd, config.n_embd)
        self.attn_dropout_p = config.attn_pdrop
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, is_causal: bool, cache: KVCache | None = None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.shape
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, self.head_dim)  # (B, T, 3, nh, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, nh, T, hd) each
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, nh, S, hd): past + new
        dropout = self.attn_dropout_p if self.training else 0.0
        if output_attentions or (self.upcast and q.dtype != torch.float32):
            y, weights = self._explicit_attention(q, k, v, mask, is_causal, dropout)
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=is_causal,
                                               scale=self.scaling)  # (B, nh, T, hd)
        y = self.c_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)
        return (self.resid_dropout(y) if self.training else y), weights

    def _explicit_attention(self, q, k, v, mask, is_causal, dropout):
        """The attention weights spelled out (SDPA does not return them), in float32 when upcasting."""
        T, S = q.shape[2], k.shape[2]
        dtype = torch.float32 if self.upcast else q.dtype
        scores = (q.to(dtype) * self.scaling) @ k.to(dtype).transpose(-2, -1)  # (B, nh, T, S)
        if is_causal:
            mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(dtype).min) if mask.dtype == torch.bool else scores + mask
        weights = F.dropout(scores.softmax(dim=-1).to(v.dtype), dropout, self.training)  # (B, nh, T, S)
        return weights @ v, weights  # (B, nh, T, hd)


# --- MLP -----------------------------------------------------------------------------------------------------------------


class GPT2MLP(nn.Module):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.c_fc = GPT2Conv1D(config.n_embd, config.inner_size)
        self.c_proj = GPT2Conv1D(config.inner_size, config.n_embd)
        self.act = get_activation(config.activation_function)  # checked here: an unknown name fails at build time
        self.act_name = config.activation_function
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c_proj(self.c_fc(x, activation=self.act_name))  # (B, T, C)
        return self.dropout(y) if self.training else y


# --- block and model -----------------------------------------------------------------------------------------------------


class GPT2Block(GradientCheckpointingLayer):
    """Pre-norm residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, is_causal: bool, cache: KVCache | None = None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attn(self.ln_1(x), mask, is_causal, cache, output_attentions)
        x = x + a
        return x + self.mlp(self.ln_2(x)), weights  # (B, T, C)


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Older checkpoints (the OpenAI ones included) saved the causal mask as buffers; masks are computed here.
    ignore_unexpected = (r"(^|\.)h\.\d+\.attn\.(bias|masked_bias)$",)

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' GPT-2 init: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2 * n_layer)."""
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, GPT2Conv1D):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.zeros_(module.bias)
        if isinstance(module, (GPT2Attention, GPT2MLP)):
            nn.init.normal_(module.c_proj.weight, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))


class GPT2Model(GPT2PreTrainedModel):
    input_embeddings_name = "wte"

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPast:
        """``attention_mask``: (B, past + T) 1/0 padding mask, or a boolean (B, 1, T, past + T) mask used as is.

        The cache (``past_key_values``, extended, or a new one) is returned when ``use_cache`` (default
        ``config.use_cache``, True for GPT-2), as transformers returns it. Positions count from the cached length
        unless ``position_ids`` are given.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)  # (B, T, C)
        B, T = inputs_embeds.shape[:2]
        use_cache = self.config.use_cache if use_cache is None else use_cache
        cache, use_cache = forward_cache(self, self.h, past_key_values, use_cache, B, T, self.new_cache)
        past = cache.length if cache is not None else 0
        if past + T > self.config.n_positions:
            raise ValueError(f"input reaches position {past + T} but the model has {self.config.n_positions} "
                             f"positions; truncate it (truncation=True, max_length={self.config.n_positions})")
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=inputs_embeds.device)[None]  # (1, T)
        x = inputs_embeds + self.wpe(position_ids)  # (B, T, C)
        if token_type_ids is not None:
            x = x + self.wte(token_type_ids)  # GPT-2 embeds token types with the word embeddings
        if self.training:  # dropout modules are only called when they act: less per-token overhead in decoding
            x = self.drop(x)
        mask, is_causal = causal_attention_mask(attention_mask, T, past, x.device)

        hidden_states: list[torch.Tensor] = []
        attentions: list[torch.Tensor] = []
        for block in self.h:
            if output_hidden_states:
                hidden_states.append(x)
            x, weights = block(x, mask, is_causal, cache, output_attentions)
            if weights is not None:
                attentions.append(weights)
        x = self.ln_f(x)
        if output_hidden_states:
            hidden_states.append(x)
        if cache is not None:
            cache.advance(T)
        return BaseModelOutputWithPast(x, cache if use_cache else None,
                                       tuple(hidden_states) if output_hidden_states else None,
                                       tuple(attentions) if output_attentions else None, () if output_attentions else None)

    def new_cache(self, batch_size: int, capacity: int) -> KVCache:
        c = self.config
        return KVCache(c.n_layer, batch_size, c.n_head, c.n_embd // c.n_head, capacity, self.wte.weight.dtype,
                       self.wte.weight.device)


# --- heads ---------------------------------------------------------------------------------------------------------------


class GPT2LMHeadModel(GPT2PreTrainedModel, GenerationMixin):
    """Next-token logits through the (tied) word embeddings; ``generate`` comes from GenerationMixin."""

    tied_weights = {"lm_head.weight": "transformer.wte.weight"}
    output_embeddings_name = "lm_head"

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def new_kv_cache(self, batch_size: int, capacity: int) -> KVCache:
        return self.transformer.new_cache(batch_size, capacity)

    def decoding_step(self, cache: KVCache) -> GPT2NativeDecodingStep | GPT2DecodingStep | None:
        """A step that computes exactly what forward does, where one can: on CPU, in eval mode, with no forward hooks
        (it bypasses the modules); otherwise None (use forward). That is :class:`GPT2NativeDecodingStep` for a few
        float32, bfloat16 or int8 (``quantization="int8"``) rows when zoo's native kernel is built, else
        :class:`GPT2DecodingStep`, except with half-precision upcasting (``reorder_and_upcast_attn``), which only
        the kernel computes (in bfloat16), and for an int8 model, which the PyTorch step cannot read (it reads float
        weights): None then when the kernel cannot run (float16, no kernel)."""
        wte = self.transformer.wte.weight  # the lm_head of an int8 model has no float weight
        if self.training or wte.device.type != "cpu" or has_forward_hooks(self):
            return None
        if cache.keys and cache.keys[0].shape[0] <= NATIVE_MAX_ROWS and native.available():
            try:
                return GPT2NativeDecodingStep(self, cache)
            except ValueError as exc:  # a layout or dtype the kernel does not read (float16): PyTorch computes it
                logger.debug("decoding through PyTorch: %s", exc)
        if self.quantization is not None:
            return None  # int8 projections: forward computes them (Int8Linear)
        if self.config.reorder_and_upcast_attn and wte.dtype != torch.float32:
            return None  # the PyTorch step's SDPA does not upcast: forward's explicit attention does
        return GPT2DecodingStep(self, cache)

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, use_cache=None, logits_to_keep: int = 0, output_hidden_states=None,
                output_attentions=None) -> CausalLMOutputWithPast:
        """``labels`` (B, T) are the input ids themselves (shifted inside; -100 ignored). ``logits_to_keep=n``
        scores only the last n positions (generation needs 1), sparing most of the largest matmul of the model;
        without autograd on CPU it reads a transposed copy of the output embedding, kept for decoding."""
        out = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               use_cache, output_hidden_states, output_attentions, return_dict=True)
        h = out.last_hidden_state
        if logits_to_keep:
            # a decoding step: project through the layout that streams fastest (see project_for_decoding)
            logits = project_for_decoding(h[:, -logits_to_keep:], self.lm_head)  # (B, logits_to_keep, V)
        else:
            logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if labels is not None:
            shift_logits = logits[:, :-1].float().reshape(-1, logits.shape[-1])
            loss = F.cross_entropy(shift_logits, labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions,
                                      out.cross_attentions)


class GPT2DecodingStep:
    """One new token per sequence through GPT-2, for ``generate``: the forward pass's maths without its module tree.

    At batch 1 a decoding step reads every weight once (~0.5 GB for gpt2), and on CPU that reading is all it should
    cost. The forward pass adds ~3 ms per token around the products on 2 cores (module calls, reshapes, cache and
    mask bookkeeping, the output object: ~15% of a token), while no weight is being read. Here that work is done once
    per ``generate`` call: every projection becomes a :class:`~zoo.generation.DecodingProjection`, over the
    published ``(in, out)`` weight or, for the two matrices whose other layout streams faster, over a transposed
    copy kept beside the module (the output embedding, 154 MB for gpt2, and the MLP output projections, 113 MB;
    :func:`~zoo.generation.decoding_weight`), and a step is the bare sequence of ops (benchmarks/bench_generate.py:
    ~1.15x tokens/s). The maths is the forward pass's; only the summation order inside the products differs, so the
    logits agree to float rounding (tests/test_generation.py compares them).
    """

    def __init__(self, model: GPT2LMHeadModel, cache: KVCache) -> None:
        body, config = model.transformer, model.config
        if any(isinstance(m, Int8Linear) for m in model.modules()):
            raise ValueError(f"GPT2DecodingStep reads float weights, and this {type(model).__name__} has int8 "
                             f"projections (quantization='int8'): decode it through GPT2NativeDecodingStep or forward "
                             f"(model.decoding_step chooses)")
        self.cache = cache
        self.wte, self.wpe = body.wte.weight, body.wpe.weight
        self.heads, self.head_dim = config.n_head, config.n_embd // config.n_head
        self.eps = config.layer_norm_epsilon
        self.activation = body.h[0].mlp.act
        self.layers = [
            (block.ln_1.weight, block.ln_1.bias, self.projection(block.attn.c_attn), block.attn.scaling,
             self.projection(block.attn.c_proj), block.ln_2.weight, block.ln_2.bias, self.projection(block.mlp.c_fc),
             self.projection(block.mlp.c_proj))
            for block in body.h
        ]
        self.ln_f = (body.ln_f.weight, body.ln_f.bias)
        self.lm_head = DecodingProjection(decoding_weight(model.lm_head), model.lm_head.bias)

    @staticmethod
    def projection(conv: GPT2Conv1D) -> DecodingProjection:
        """The published ``(in, out)`` weight as it is, or where the product narrows (the MLP's output projection,
        3072 -> 768 for gpt2) a kept ``(out, in)`` copy, which streams faster (zoo.generation.decoding_weight)."""
        inner, out = conv.weight.shape
        return DecodingProjection(conv.weight, conv.bias, decoding_weight(conv) if inner > out else None)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids`` (B, 1) -> next-token logits (B, V); ``attention_mask``: None or boolean (B, 1, 1, past + 1);
        ``position_ids``: None (the cached length) or (B, 1)."""
        cache, heads, head_dim, eps = self.cache, self.heads, self.head_dim, self.eps
        B = input_ids.shape[0]
        position = cache.length if position_ids is None else position_ids[:, 0]
        x = self.wte[input_ids[:, 0]] + self.wpe[position]  # (B, C)
        C = x.shape[-1]
        for i, (w1, b1, c_attn, scaling, c_proj, w2, b2, c_fc, mlp_proj) in enumerate(self.layers):
            qkv = c_attn(F.layer_norm(x, (C,), w1, b1, eps))  # (B, 3C)
            q, k, v = qkv.view(B, 3, heads, 1, head_dim).unbind(1)  # (B, nh, 1, hd) each
            k, v = cache.update(i, k, v)  # (B, nh, S, hd)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, scale=scaling)  # (B, nh, 1, hd)
            x = x + c_proj(y.view(B, C))
            x = x + mlp_proj(self.activation(c_fc(F.layer_norm(x, (C,), w2, b2, eps))))  # (B, C)
        cache.advance(1)
        return self.lm_head(F.layer_norm(x, (C,), *self.ln_f, eps))  # (B, V)


class GPT2NativeDecodingStep:
    """One new token per sequence through GPT-2 in a single call of zoo's native kernel (zoo/native/decode.c).

    The kernel reads the model's own parameters in place (the published ``(in, out)`` Conv1D layouts, the tied
    output embedding as it is: no copy) and runs a whole step, every layer and the output projection, in one
    parallel region on torch's threads, which brings batch-1 decoding close to the memory-bandwidth bound
    (benchmarks/bench_generate.py). Same maths as the forward pass; only the summation order inside the products
    differs (tests/test_native.py holds logits and cache to a float64 model, tests/test_generation.py to forward).
    A bfloat16 model is read as bf16 (half the bytes), with a bf16 cache, rounded where its forward pass rounds
    (its ``reorder_and_upcast_attn`` included); its logits are float32 tensors holding bf16 values. An int8 model
    (``quantization="int8"``: every projection and the output embedding an Int8Linear) is read as its int8 ``(out,
    in)`` weights and scales, the rest in the model's float dtype: a quarter of the float32 bytes of the matrices.
    Its maths is the dequantized weights' (``q * scale``) in float32, without the bf16 rounding of activations that
    Int8Linear's CPU fast path applies in a float32 model (a bf16 model rounds where its int8 forward pass rounds).
    ``widen=True`` runs the kernel's portable loops even where its vector ones run (bf16 output embedding widened
    rather than on vdpbf16ps, int8 rows without AVX-512), so that tests compare both on one machine.
    """

    def __init__(self, model: GPT2LMHeadModel, cache: KVCache, widen: bool = False) -> None:
        body, config = model.transformer, model.config
        self.cache = cache
        head_weight, head_scale = self.matrix(model.lm_head)
        self.kernel = native.NativeDecoder(
            wte=body.wte.weight, wpe=body.wpe.weight, layers=[self.layer_weights(b) for b in body.h],
            ln_f_weight=body.ln_f.weight, ln_f_bias=body.ln_f.bias, head_weight=head_weight,
            head_weight_scale=head_scale, head_bias=model.lm_head.bias, heads=config.n_head,
            eps=config.layer_norm_epsilon, activation=config.activation_function, cache=cache,
            upcast=config.reorder_and_upcast_attn, widen_bf16=widen)

    @staticmethod
    def matrix(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight, scales) of a projection as the kernel reads it: a float module's parameter in its published
        layout and None, or an Int8Linear's ``(out, in)`` int8 weight and its scales."""
        if isinstance(module, Int8Linear):
            return module.weight_int8, module.weight_scale
        return module.weight, None

    @classmethod
    def layer_weights(cls, block: GPT2Block) -> native.DecoderLayerWeights:
        """One block's tensors as the kernel reads them (the parameters themselves, in their published layouts, or
        the int8 buffers)."""
        attn, mlp = block.attn, block.mlp
        (w_attn, s_attn), (w_proj, s_proj), (w_fc, s_fc), (w_mlp, s_mlp) = (
            cls.matrix(m) for m in (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj))
        return native.DecoderLayerWeights(
            block.ln_1.weight, block.ln_1.bias, w_attn, attn.c_attn.bias, w_proj, attn.c_proj.bias, block.ln_2.weight,
            block.ln_2.bias, w_fc, mlp.c_fc.bias, w_mlp, mlp.c_proj.bias, attn.scaling, attn_weight_scale=s_attn,
            proj_weight_scale=s_proj, fc_weight_scale=s_fc, mlp_weight_scale=s_mlp)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids`` (B, 1) -> next-token logits (B, V); ``attention_mask``: None or boolean (B, 1, 1, past + 1);
        ``position_ids``: None (the cached length) or (B, 1)."""
        cache = self.cache
        if position_ids is None:
            positions = torch.full((input_ids.shape[0],), cache.length, dtype=torch.long)
        else:
            positions = position_ids[:, 0]
        logits = self.kernel(input_ids[:, 0], positions, attention_mask)  # (B, V)
        cache.advance(1)
        return logits


class GPT2ForSequenceClassification(GPT2PreTrainedModel):
    """Classifies from the last token that is not padding (the only one that has seen the whole text).

    The last token is the rightmost one different from ``config.pad_token_id``, so left and right padding both
    work; without a pad_token_id only batches of one can be classified, as in transformers.
    """

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.score = Linear(config.n_embd, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, use_cache=None, output_hidden_states=None,
                output_attentions=None) -> SequenceClassifierOutputWithPast:
        out = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               use_cache, output_hidden_states, output_attentions, return_dict=True)
        logits = self.score(last_token_states(out.last_hidden_state, input_ids, self.config.pad_token_id))  # (B, labels)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)


class GPT2ForTokenClassification(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.transformer = GPT2Model(config)
        p = getattr(config, "classifier_dropout", None)
        if p is None:
            p = getattr(config, "hidden_dropout", None)
        self.dropout = nn.Dropout(p if p is not None else 0.1)
        self.classifier = Linear(config.n_embd, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, use_cache=None, output_hidden_states=None,
                output_attentions=None) -> TokenClassifierOutput:
        # the output has no cache: none is made (a given one is still read and extended)
        out = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               False, output_hidden_states, output_attentions, return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1)) if labels is not None else None
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class GPT2ForQuestionAnswering(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.qa_outputs = Linear(config.n_embd, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                start_positions=None, end_positions=None, output_hidden_states=None,
                output_attentions=None) -> QuestionAnsweringOutput:
        out = self.transformer(input_ids, None, attention_mask, token_type_ids, position_ids, inputs_embeds, False,
                               output_hidden_states, output_attentions, return_dict=True)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        return QuestionAnsweringOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
