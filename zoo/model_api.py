"""The model API people call every day, on every zoo model: embeddings, resizing, checkpointing, counting, tuples.

:class:`ModelAPIMixin` is mixed into :class:`zoo.modeling.PreTrainedModel`; each method mirrors the one of the
same name in transformers' modeling_utils.py (``EmbeddingAccessMixin``, ``PreTrainedModel``) and
modeling_layers.py (``GradientCheckpointingLayer``), so code written for transformers runs unchanged and gets the
same numbers:

- ``get_input_embeddings`` / ``set_input_embeddings`` / ``get_output_embeddings`` / ``set_output_embeddings``,
  found through two class attributes a model declares (``input_embeddings_name``, ``output_embeddings_name``);
- ``resize_token_embeddings``: new rows drawn as transformers draws them (the same random calls in the same order,
  so for the same torch seed the rows are equal), tied weights still one Parameter, ``config.vocab_size`` updated;
- ``gradient_checkpointing_enable`` / ``disable`` / ``is_gradient_checkpointing``: ``torch.utils.checkpoint`` over
  every :class:`GradientCheckpointingLayer` (a model's repeated block) while training;
- ``num_parameters(only_trainable, exclude_embeddings)``;
- ``model(..., return_dict=False)`` (or ``config.return_dict = False``): the output's ``to_tuple()``, None entries
  dropped, as transformers' ``can_return_tuple`` returns it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from zoo.config_fields import MAX_VOCAB
from zoo.errors import ModelAPIError, UnsupportedModelOperationError
from zoo.outputs import ModelOutput

logger = logging.getLogger(__name__)


_warned: set[tuple[str, str]] = set()


def warn_once(log: logging.Logger, message: str) -> None:
    """``log.warning(message)`` the first time in this process (transformers' ``warning_once``): a training loop
    would otherwise repeat it every step."""
    if (log.name, message) not in _warned:
        _warned.add((log.name, message))
        log.warning(message)


# --- gradient checkpointing ------------------------------------------------------------------------------------------


class GradientCheckpointingLayer(nn.Module):
    """A model's repeated block (a transformer layer): with gradient checkpointing on, in training, its activations
    are not kept for the backward pass but recomputed there (transformers' modeling_layers.GradientCheckpointingLayer).

    ``forward`` itself is checkpointed, not ``__call__``, so module hooks stay outside and run once. Tensors that need
    gradients must be passed positionally (``use_reentrant=True`` only sees positional arguments), as every zoo block
    is called.
    """

    gradient_checkpointing: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _checkpointable(cls.__dict__["forward"])  # type: ignore[method-assign]


def _checkpointable(forward: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def forward_maybe_checkpointed(self: GradientCheckpointingLayer, *args: Any, **kwargs: Any) -> Any:
        # Only the outermost forward of a subclass chain checkpoints; without gradients there is nothing to replay.
        if (self.gradient_checkpointing and self.training and torch.is_grad_enabled()
                and type(self).forward is forward_maybe_checkpointed):
            return self._gradient_checkpointing_func(functools.partial(forward, self, **kwargs), *args)
        return forward(self, *args, **kwargs)

    return forward_maybe_checkpointed


# --- the mixin -----------------------------------------------------------------------------------------------------------


class ModelAPIMixin(nn.Module):
    """transformers' everyday model methods, for a module with a ``config`` (PreTrainedModel is one).

    A model names where its token embeddings live, as a dotted path inside it: ``input_embeddings_name``
    (``"embeddings.word_embeddings"``, ``"wte"``) on the bare model, ``output_embeddings_name``
    (``"cls.predictions.decoder"``, ``"lm_head"``) on a head with a vocabulary projection. A head without an input
    path asks its base model (the submodule named ``base_model_prefix``), as transformers' fallback does.
    """

    input_embeddings_name: ClassVar[str | None] = None
    output_embeddings_name: ClassVar[str | None] = None
    #: What forward reads first; transformers' ``main_input_name`` ("pixel_values" for image models).
    main_input_name: ClassVar[str] = "input_ids"

    # PreTrainedModel's: the config, how a fresh layer is initialised, and the tying of tied weights
    config: Any
    _init_weights: Callable[[nn.Module], None]
    tie_weights: Callable[[], None]

    # --- return_dict -------------------------------------------------------------------------------------------------

    def __call__(self, *args: Any, return_dict: bool | None = None, **kwargs: Any) -> Any:
        """``model(...)``; ``return_dict=False`` (or ``config.return_dict`` False) returns ``output.to_tuple()``.

        A model calling another one inside (a head its base model) passes ``return_dict=True``, so a config that
        asks for tuples changes only what the caller gets.
        """
        out = super().__call__(*args, **kwargs)
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        if not return_dict and isinstance(out, ModelOutput):
            return out.to_tuple()
        return out

    # --- embeddings --------------------------------------------------------------------------------------------------

    def _inner_base_model(self) -> ModelAPIMixin | None:
        prefix = getattr(self, "base_model_prefix", "")
        inner = getattr(self, prefix, None) if prefix else None
        return inner if isinstance(inner, ModelAPIMixin) and inner is not self else None

    def _no_embeddings(self, what: str) -> UnsupportedModelOperationError:
        return UnsupportedModelOperationError(
            f"{type(self).__name__}.{what}: this model has no token embeddings (it reads {self.main_input_name}, not "
            f"token ids); embeddings exist only on text models such as BERT, RoBERTa, GPT-2 and DistilBERT")

    def get_input_embeddings(self) -> nn.Module:
        """The module that turns token ids into vectors (an ``nn.Embedding``)."""
        if self.input_embeddings_name:
            return self.get_submodule(self.input_embeddings_name)
        inner = self._inner_base_model()
        if inner is not None:
            return inner.get_input_embeddings()
        raise self._no_embeddings("get_input_embeddings()")

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Put ``value`` where the input embeddings are (tied output embeddings are re-tied by ``tie_weights``)."""
        if self.input_embeddings_name:
            owner, _, name = self.input_embeddings_name.rpartition(".")
            setattr(self.get_submodule(owner) if owner else self, name, value)
            return
        inner = self._inner_base_model()
        if inner is None:
            raise self._no_embeddings("set_input_embeddings()")
        inner.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        """The projection onto the vocabulary of a language-model head, or None for a model without one."""
        if self.output_embeddings_name is None:
            return None
        return self.get_submodule(self.output_embeddings_name)

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        if self.output_embeddings_name is None:
            raise UnsupportedModelOperationError(
                f"{type(self).__name__}.set_output_embeddings(): this model has no language-model head "
                f"(get_output_embeddings() is None); use a masked-LM or causal-LM class")
        owner, _, name = self.output_embeddings_name.rpartition(".")
        setattr(self.get_submodule(owner) if owner else self, name, new_embeddings)

    # --- resizing ----------------------------------------------------------------------------------------------------

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Give the vocabulary ``new_num_tokens`` rows (rounded up to a multiple of ``pad_to_multiple_of``); return
        the input embedding module.

        Rows are kept from the start, dropped from the end when shrinking. Added rows are drawn, as transformers
        draws them, from a normal distribution with the old rows' mean and (scaled by 1e-9) covariance
        (``mean_resizing=True``, https://nlp.stanford.edu/~johnhew/vocab-expansion.html), or as ``_init_weights``
        initialises a fresh embedding (``mean_resizing=False``). An untied LM head is resized the same way (its new
        bias entries drawn around the old bias' mean); a tied one stays the very same Parameter as the input
        embeddings, and a tied output bias gets zeros. ``config.vocab_size`` is updated.
        """
        for name, value in (("new_num_tokens", new_num_tokens), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ModelAPIError(f"resize_token_embeddings({name}={value!r}): {name} must be an int >= 1 "
                                    f"(or None), e.g. resize_token_embeddings(len(tokenizer))")
        if new_num_tokens is not None and new_num_tokens > MAX_VOCAB:
            raise ModelAPIError(f"resize_token_embeddings({new_num_tokens}): more rows than any vocabulary zoo loads "
                                f"(vocab_size is at most {MAX_VOCAB}); pass the tokenizer's size, len(tokenizer)")
        if new_num_tokens is None and pad_to_multiple_of is None:
            return self.get_input_embeddings()  # type: ignore[return-value]
        if getattr(self, "quantization", None) is not None:
            # its output projection is an int8 copy of the embeddings (zoo/quantization.py): it cannot grow rows
            raise UnsupportedModelOperationError(
                f"resize_token_embeddings({new_num_tokens}): this {type(self).__name__} has {self.quantization} "
                f"projections, its output projection an int8 copy of the embeddings that cannot be resized; resize "
                f"the float model (load it without quantization=), then quantize it (zoo.quantization.quantize_int8)")
        embeddings = self._resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.config.vocab_size = embeddings.weight.shape[0]
        self.tie_weights()
        return embeddings

    def _resize_token_embeddings(self, new_num_tokens: int | None, pad_to_multiple_of: int | None,
                                 mean_resizing: bool) -> nn.Embedding:
        old = self.get_input_embeddings()
        new = self._get_resized_embeddings(old, new_num_tokens, pad_to_multiple_of, mean_resizing)
        new.requires_grad_(old.weight.requires_grad)
        self.set_input_embeddings(new)
        new_num_tokens = new.weight.shape[0]
        old_head = self.get_output_embeddings()
        if old_head is not None:
            if isinstance(old_head, nn.Embedding):
                new_head = self._get_resized_embeddings(old_head, new_num_tokens, mean_resizing=mean_resizing)
            else:
                new_head = self._get_resized_lm_head(old_head, new_num_tokens, mean_resizing=mean_resizing)
            new_head.requires_grad_(old_head.weight.requires_grad)
            self.set_output_embeddings(new_head)
        return self.get_input_embeddings()  # type: ignore[return-value]

    def _get_resized_embeddings(self, old: nn.Module, new_num_tokens: int | None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Module:
        """The input embeddings with ``new_num_tokens`` rows: the same module, its weight's data replaced (so a tied
        output projection, the same Parameter, follows). The random calls are transformers' own, in its order: a
        fresh ``nn.Embedding`` (its default init), then the added rows."""
        if pad_to_multiple_of is not None:
            if new_num_tokens is None:
                new_num_tokens = old.weight.shape[0]
            new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
        if new_num_tokens is None:
            return old
        old_num_tokens, dim = old.weight.shape
        if old_num_tokens == new_num_tokens:
            old.num_embeddings = new_num_tokens
            return old
        if not isinstance(old, nn.Embedding):
            raise UnsupportedModelOperationError(
                f"resize_token_embeddings: the input embeddings of {type(self).__name__} are a "
                f"{type(old).__name__}, not an nn.Embedding; set an nn.Embedding with set_input_embeddings first")
        new = nn.Embedding(new_num_tokens, dim, device=old.weight.device, dtype=old.weight.dtype)
        if new_num_tokens > old_num_tokens and not mean_resizing:
            self._init_weights(new)
        elif new_num_tokens > old_num_tokens:
            logger.info("The new embeddings are drawn from a normal distribution with the old embeddings' mean and "
                        "covariance (https://nlp.stanford.edu/~johnhew/vocab-expansion.html); to draw them as a "
                        "fresh layer is initialised, pass mean_resizing=False")
            _init_added_rows_with_mean(old.weight, new.weight, new_num_tokens - old_num_tokens)
        n = min(old_num_tokens, new_num_tokens)
        new.weight.data[:n, :] = old.weight.data[:n, :]
        old.weight.data = new.weight.data
        old.num_embeddings = new_num_tokens
        if old.padding_idx is not None and new_num_tokens - 1 < old.padding_idx:
            old.padding_idx = None  # the padding row was cut off
        return old

    def _get_resized_lm_head(self, old: nn.Module, new_num_tokens: int | None, mean_resizing: bool = True) -> nn.Module:
        """An untied vocabulary projection with ``new_num_tokens`` outputs: a new ``nn.Linear`` (default init, as
        transformers builds it), added rows drawn like the embeddings' and added bias entries around the old mean.
        A tied one already has the new rows (it is the embeddings' Parameter) and is returned as it is."""
        if new_num_tokens is None:
            return old
        old_num_tokens, dim = old.weight.shape
        if old_num_tokens == new_num_tokens:
            old.out_features = new_num_tokens  # a tied weight changed under it
            return old
        if not isinstance(old, nn.Linear):
            raise UnsupportedModelOperationError(
                f"resize_token_embeddings: the output embeddings of {type(self).__name__} are a {type(old).__name__}, "
                f"not an nn.Linear; set an nn.Linear with set_output_embeddings first")
        has_bias = old.bias is not None
        new = nn.Linear(dim, new_num_tokens, bias=has_bias, device=old.weight.device, dtype=old.weight.dtype)
        added = new_num_tokens - old_num_tokens
        if added > 0 and not mean_resizing:
            self._init_weights(new)
        elif added > 0:
            _init_added_rows_with_mean(old.weight, new.weight, added)
            if has_bias:
                bias_mean = torch.mean(old.bias.data, dim=0, dtype=torch.float32)
                bias_std = torch.std(old.bias.data, dim=0).to(torch.float32)
                new.bias.data[-added:].normal_(mean=bias_mean, std=1e-9 * bias_std)
        n = min(old_num_tokens, new_num_tokens)
        new.weight.data[:n, :] = old.weight.data[:n, :]
        if has_bias:
            new.bias.data[:n] = old.bias.data[:n]
        return new

    # --- gradient checkpointing --------------------------------------------------------------------------------------

    def _checkpointing_layers(self) -> list[GradientCheckpointingLayer]:
        return [m for m in self.modules() if isinstance(m, GradientCheckpointingLayer)]

    @property
    def supports_gradient_checkpointing(self) -> bool:
        return bool(self._checkpointing_layers())

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None,
                                      every_n_layers: int = 1) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them (in training mode).

        ``gradient_checkpointing_kwargs`` go to ``torch.utils.checkpoint.checkpoint`` (default
        ``{"use_reentrant": False}``, as transformers); ``every_n_layers=2`` checkpoints every other block.
        Gradients equal those of the plain backward pass (dropout masks are replayed: torch restores the RNG state).
        """
        layers = self._checkpointing_layers()
        if not layers:
            raise UnsupportedModelOperationError(
                f"{type(self).__name__} does not support gradient checkpointing: it has no repeated blocks to "
                f"recompute (supported: BERT, RoBERTa, GPT-2, DistilBERT)")
        if isinstance(every_n_layers, bool) or not isinstance(every_n_layers, int) or every_n_layers < 1:
            raise ModelAPIError(f"gradient_checkpointing_enable(every_n_layers={every_n_layers!r}): must be an int >= 1")
        if gradient_checkpointing_kwargs is None:
            gradient_checkpointing_kwargs = {"use_reentrant": False}
        elif not isinstance(gradient_checkpointing_kwargs, dict):
            raise ModelAPIError(f"gradient_checkpointing_kwargs must be a dict of torch.utils.checkpoint.checkpoint "
                                f"options, e.g. {{'use_reentrant': False}}; got {type(gradient_checkpointing_kwargs).__name__}")
        func = functools.partial(torch.utils.checkpoint.checkpoint, **gradient_checkpointing_kwargs)
        for i, layer in enumerate(layers):
            layer.gradient_checkpointing = i % every_n_layers == 0
            layer._gradient_checkpointing_func = func
        if self.main_input_name == "input_ids":
            # transformers does this too: with use_reentrant=True and frozen embeddings, no gradient would reach the
            # checkpointed blocks' inputs otherwise (adapters, PEFT)
            self.enable_input_require_grads()

    def gradient_checkpointing_disable(self) -> None:
        for layer in self._checkpointing_layers():
            layer.gradient_checkpointing = False
        self.disable_input_require_grads()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(layer.gradient_checkpointing for layer in self._checkpointing_layers())

    # transformers 5's newer names for the same three
    activation_checkpointing_enable = gradient_checkpointing_enable
    activation_checkpointing_disable = gradient_checkpointing_disable
    is_activation_checkpointing = is_gradient_checkpointing

    def enable_input_require_grads(self) -> None:
        """Make the input embeddings' output require gradients (a forward hook), so gradients flow into checkpointed
        blocks even when the embeddings are frozen."""
        self.disable_input_require_grads()

        def make_inputs_require_grads(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            output.requires_grad_(True)

        self._require_grads_hooks = [self.get_input_embeddings().register_forward_hook(make_inputs_require_grads)]

    def disable_input_require_grads(self) -> None:
        for hook in self.__dict__.pop("_require_grads_hooks", []):
            hook.remove()

    # --- counting ----------------------------------------------------------------------------------------------------

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameters (tied ones once), as transformers counts them: ``exclude_embeddings`` leaves out the weight of
        every ``nn.Embedding`` (token, position and token-type tables)."""
        excluded = ({f"{name}.weight" for name, module in self.named_modules() if isinstance(module, nn.Embedding)}
                    if exclude_embeddings else set())
        return sum(p.numel() for name, p in self.named_parameters()
                   if name not in excluded and (p.requires_grad or not only_trainable))


def _init_added_rows_with_mean(old: torch.Tensor, new: torch.Tensor, added: int) -> None:
    """transformers' ``_init_added_embeddings_weights_with_mean``: the last ``added`` rows of ``new`` drawn from
    N(mean, 1e-9 * covariance) of ``old``'s rows, or set to the mean where that covariance is not positive definite."""
    old_weight = old.data.to(torch.float32)
    mean = torch.mean(old_weight, dim=0)
    centered = old_weight - mean
    covariance = centered.T @ centered / old_weight.shape[0]
    epsilon = 1e-9
    if torch.distributions.constraints.positive_definite.check(epsilon * covariance).all():
        distribution = torch.distributions.MultivariateNormal(mean, covariance_matrix=epsilon * covariance)
        new.data[-added:, :] = distribution.sample(sample_shape=(added,)).to(old.dtype)
    else:
        new.data[-added:, :] = mean[None, :].repeat(added, 1).to(old.dtype)


def adjust_tied_bias(module: nn.Module) -> None:
    """After tying a projection's weight to embeddings of another size, fit its bias to the rows (zeros added, or the
    end cut off) as transformers' ``_adjust_bias`` does; the bias stays the same Parameter."""
    bias, weight = getattr(module, "bias", None), getattr(module, "weight", None)
    if isinstance(bias, torch.Tensor) and isinstance(weight, torch.Tensor) and bias.shape[0] != weight.shape[0]:
        bias.data = F.pad(bias.data, (0, weight.shape[0] - bias.shape[0]), "constant", 0)
    if isinstance(module, nn.Linear) and isinstance(weight, torch.Tensor):
        module.out_features = weight.shape[0]


def last_token_states(hidden: torch.Tensor, input_ids: torch.Tensor | None, pad_token_id: int | None) -> torch.Tensor:
    """The hidden state (B, C) of each row's last token that is not padding, the one a decoder-only classifier reads
    (it alone has seen the whole text): the rightmost id other than ``pad_token_id``, so left and right padding both
    work. Without a pad id only a batch of one can be classified (as in transformers); without input_ids (embeddings
    given) the last position is taken."""
    B, T = hidden.shape[:2]
    if pad_token_id is None and B != 1:
        raise ValueError(f"cannot classify a batch of {B} without config.pad_token_id: the last real token of "
                         f"each row is unknown; set pad_token_id (e.g. to the tokenizer's pad or eos id)")
    if pad_token_id is None or input_ids is None:
        last = torch.full((B,), T - 1, dtype=torch.long, device=hidden.device)
    else:
        not_pad = (input_ids != pad_token_id).to(device=hidden.device, dtype=torch.int32)
        last = (torch.arange(input_ids.shape[-1], device=hidden.device, dtype=torch.int32) * not_pad).argmax(-1)
    return hidden[torch.arange(B, device=hidden.device), last]  # (B, C)
