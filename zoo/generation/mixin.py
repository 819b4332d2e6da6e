"""``GenerationMixin``: ``generate()`` for every causal LM, with transformers' options and results.

A causal LM gets ``generate`` by inheriting :class:`GenerationMixin`. What it must provide is its ordinary
forward pass, taking ``past_key_values`` (a :class:`~zoo.generation.KVCache` it fills through
``cache.update(layer, k, v)`` and ``cache.advance(n)``), an ``attention_mask`` that may be 2D (padding) or an
SDPA-ready boolean 4D mask, ``position_ids``, and ``logits_to_keep`` (score only the last positions).

The semantics are transformers' (generation/utils.py ``GenerationMixin.generate`` and ``_sample``), so the same
checkpoint, prompts and options give the same token ids, batched or not:

- options come from the model's ``generation_config`` (its generation_config.json), then ``generation_config=``
  (whose unset fields still come from the model's), then the keyword arguments; the model's is never changed;
- ``max_new_tokens`` wins over ``max_length``; a ``max_length`` nobody set means 20 new tokens (within the model's
  positions); ``min_new_tokens`` / ``min_length`` ban EOS until reached;
- left-padded prompts: position ids count real tokens only, padding is never attended nor penalised;
- logits processing in transformers' order (zoo/generation/logits_process.py); a token is the argmax, or drawn
  from the softmax with ``torch.multinomial`` (so ``seed=`` here and ``torch.manual_seed`` there draw the same);
- each row stops at its own EOS (or stop string) and is filled with ``pad_token_id`` from then on; generation ends
  when every row has stopped or ``max_length`` is reached;
- ``num_beams > 1`` runs beam search (zoo/generation/beam_search.py); ``num_return_sequences`` rows per prompt;
- ``return_dict_in_generate=True`` returns :class:`~zoo.generation.GenerateDecoderOnlyOutput` (or its beam
  variant) with ``scores`` / ``logits`` per step when asked for;
- streamers receive ``put(prompt_ids)`` once, then ``put(new_ids)`` per step and ``end()``;
- an encoder-decoder (``config.is_encoder_decoder``: T5) provides ``get_encoder()`` and a forward taking
  ``encoder_outputs`` / ``decoder_input_ids``: its input batch (padded on either side, with its mask) is encoded
  once, the decoder starts from ``decoder_start_token_id`` and ``max_new_tokens`` / ``max_length`` count decoder
  tokens, as in transformers; the sequences returned start with the start token
  (zoo/generation/runner.py ``Seq2SeqRunner``).

Speed at batch 1 is bounded by reading every weight once per token, and the loop is kept lean to stay near that
bound: one preallocated cache and output buffer, masks built once, logits for the last position only, the whole
loop under ``torch.inference_mode``, the model's :meth:`GenerationMixin.decoding_step` after the prompt (GPT-2's
runs a whole step in zoo's native kernel), and no processor or criterion that the options do not ask for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import ClassVar, Any

import torch

from zoo.errors import GenerationError
from zoo.generation.beam_search import beam_search
from zoo.generation.cache import KVCache
from zoo.generation.config import FIELDS, INERT, UNSUPPORTED, GenerationConfig, unknown_option_error
from zoo.generation.logits_process import LogitsProcessorList, build_logits_processors
from zoo.generation.outputs import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput
from zoo.generation.runner import ModelRunner, Seq2SeqRunner
from zoo.generation.stopping import MaxTimeCriteria, StoppingCriteriaList, StopStringCriteria

logger = logging.getLogger(__name__)

__all__ = ["GenerationMixin", "supported_generate_options"]

#: generate()'s own arguments, beside the GenerationConfig fields.
CALL_OPTIONS = ("input_ids", "inputs", "attention_mask", "generation_config", "logits_processor", "stopping_criteria",
                "streamer", "tokenizer", "prefix_allowed_tokens_fn", "seed", "generator")
#: transformers' generate() arguments zoo does not take; None or False (their "off") is accepted and dropped.
UNSUPPORTED_CALL_OPTIONS = ("synced_gpus", "assistant_model", "assistant_tokenizer", "negative_prompt_ids",
                            "negative_prompt_attention_mask", "custom_generate", "trust_remote_code")
#: Options that only act when sampling / with beams, and their "off" values (transformers warns about them too).
SAMPLING_ONLY = {"temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None, "typical_p": 1.0,
                 "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}
BEAM_ONLY = {"length_penalty": 1.0, "early_stopping": False}


def supported_generate_options() -> list[str]:
    """Every keyword ``generate`` takes."""
    return sorted(set(FIELDS) | set(CALL_OPTIONS))


def _token_list(value: int | Sequence[int] | torch.Tensor | None) -> list[int]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


class GenerationMixin:
    """``generate()`` for a causal LM whose forward takes ``past_key_values``, ``position_ids``, ``logits_to_keep``.

    The model's config supplies the cache shape (``num_hidden_layers``, ``num_attention_heads`` and
    ``hidden_size``, or ``num_key_value_heads`` / ``head_dim`` where the architecture has them); override
    :meth:`new_kv_cache` for another layout. :attr:`generation_config` supplies the defaults of every option.
    """

    #: Whether positions are computed rather than learned (rotary), so the model runs past
    #: ``max_position_embeddings``: generating beyond it warns (quality may degrade there, unless the config scales
    #: its rotary positions) where a model with learned positions refuses it, as transformers does.
    computes_positions: ClassVar[bool] = False

    # --- what a model provides ---------------------------------------------------------------------------------------

    def new_kv_cache(self, batch_size: int, capacity: int) -> KVCache:
        """An empty cache for ``batch_size`` rows of up to ``capacity`` positions, on the model's device and dtype."""
        config = self.config  # type: ignore[attr-defined]
        heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        param = next(self.parameters())  # type: ignore[attr-defined]
        return KVCache(config.num_hidden_layers, batch_size, heads, head_dim, capacity, param.dtype, param.device)

    def decoding_step(self, cache: KVCache) -> Callable[..., torch.Tensor] | None:
        """A faster way to decode one token per sequence, or None (the default) to call the forward pass.

        When a model returns a callable here, ``generate`` calls ``step(input_ids (B, 1), attention_mask,
        position_ids)`` for every token after the prompt instead of ``forward``; it must write the new keys and
        values into ``cache``, advance it by one, and return the next-token logits ``(B, V)``, equal to what
        ``forward`` gives. ``attention_mask`` is None or a boolean ``(B, 1, 1, past + 1)`` padding mask,
        ``position_ids`` None (positions follow the cache) or ``(B, 1)``. Beam search reorders the cache's rows in
        place between steps (:meth:`KVCache.reorder`), so a step bound to the cache's buffers stays valid.

        An encoder-decoder's step (``config.is_encoder_decoder``) is called as ``step(decoder_input_ids (B, 1),
        encoder_mask=...)`` once the cache's cross-attention keys/values are filled, with the encoder's padding mask
        as a boolean ``(B, S_enc)`` tensor, or None without padding. They are filled by the first decoder pass, or,
        where the model defines ``fill_cross_attention(cache, encoder_hidden_states)`` (T5), by that method before
        it, and then the start token runs through the step too.
        """
        return None

    def _forward_for_generation(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                                position_ids: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        """Logits of the last position, ``(B, V)`` in float32, for the next token."""
        out = self(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,  # type: ignore[operator]
                   past_key_values=cache, use_cache=cache is not None, logits_to_keep=1, return_dict=True)
        return out.logits[:, -1].float()

    # --- the defaults ------------------------------------------------------------------------------------------------

    @property
    def generation_config(self) -> GenerationConfig:
        """The defaults of :meth:`generate`: the checkpoint's generation_config.json, or (without one) the
        generation options of the model's config. Settable; ``generate`` only ever reads it."""
        config = self.__dict__.get("_generation_config")
        if config is None:
            config = GenerationConfig.from_model_config(self.config)  # type: ignore[attr-defined]
            self.__dict__["_generation_config"] = config
        return config

    @generation_config.setter
    def generation_config(self, value: GenerationConfig) -> None:
        if not isinstance(value, GenerationConfig):
            raise GenerationError(f"generation_config must be a zoo.GenerationConfig, got {type(value).__name__}; "
                                  f"build one with zoo.GenerationConfig(...) or GenerationConfig.from_pretrained(...)")
        self.__dict__["_generation_config"] = value

    def _resolve_generation_config(self, generation_config: Any, options: dict[str, Any]) -> GenerationConfig:
        """The options of one call: a copy of the model's config, or of ``generation_config`` (its unset fields from
        the model's, as in transformers), with ``options`` applied and checked."""
        model_config = self.generation_config
        if generation_config is None:
            config = model_config.copy()
        else:
            if not isinstance(generation_config, GenerationConfig):
                if not hasattr(generation_config, "to_diff_dict"):
                    raise GenerationError(f"generation_config must be a GenerationConfig, got "
                                          f"{type(generation_config).__name__}")
                generation_config = GenerationConfig.from_dict(generation_config.to_diff_dict())  # transformers'
            config = generation_config.copy()
            defaults = model_config.to_dict()
            for key in list(model_config._set) + model_config._extra_keys:
                if not config.is_set(key):
                    setattr(config, key, defaults[key])
        for name, value in options.items():
            if name in UNSUPPORTED_CALL_OPTIONS and value in (None, False):
                continue
            if name not in FIELDS and name not in INERT and name not in UNSUPPORTED:
                raise unknown_option_error(name, "generate()", supported_generate_options(), UNSUPPORTED_CALL_OPTIONS)
            setattr(config, name, value)
        config.validate()
        config.refuse_unsupported()
        if not config.do_sample:
            idle = [k for k, off in SAMPLING_ONLY.items() if k in options and options[k] != off]
            if idle:
                logger.warning("generate: %s only act when sampling, and do_sample is False; pass do_sample=True",
                               ", ".join(idle))
        if config.num_beams == 1:
            idle = [k for k, off in BEAM_ONLY.items() if k in options and options[k] != off]
            if idle:
                logger.warning("generate: %s only act in beam search, and num_beams is 1", ", ".join(idle))
        return config

    # --- generate ----------------------------------------------------------------------------------------------------

    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        logits_processor: Sequence[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None,
        stopping_criteria: Sequence[Callable[..., torch.Tensor]] | None = None,
        streamer: Any = None,
        tokenizer: Any = None,
        *,
        prefix_allowed_tokens_fn: Callable[[int, torch.Tensor], list[int]] | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> torch.Tensor | GenerateDecoderOnlyOutput | GenerateBeamDecoderOnlyOutput:
        """Continue each prompt; returns ``(B * num_return_sequences, prompt + new)`` token ids, or an output object
        with ``return_dict_in_generate=True``.

        ``options`` are the fields of :class:`~zoo.generation.GenerationConfig` (``max_new_tokens``,
        ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``num_beams``, ``eos_token_id``, ...), over the
        defaults of ``generation_config`` or the model's :attr:`generation_config`; an unknown one is an error that
        names the closest supported option. Batched prompts must be left-padded (``padding_side="left"``) with
        their ``attention_mask``. ``eos_token_id=[]`` never stops early. ``logits_processor`` /
        ``stopping_criteria``: extra callables, as in transformers. ``stop_strings`` need ``tokenizer``.
        ``seed`` or ``generator`` make sampling reproducible. ``streamer`` gets ``put(ids)`` / ``end()`` calls.
        """
        if "inputs" in options:  # transformers' name for the first argument
            if input_ids is not None:
                raise GenerationError("generate got both input_ids and inputs; pass one of them")
            input_ids = options.pop("inputs")
        with torch.inference_mode():
            return self._generate(input_ids, attention_mask, generation_config, logits_processor, stopping_criteria,
                                  streamer, tokenizer, prefix_allowed_tokens_fn, seed, generator, options)

    def _generate(self, input_ids, attention_mask, generation_config, logits_processor, stopping_criteria, streamer,
                  tokenizer, prefix_allowed_tokens_fn, seed, generator, options):
        config = self._resolve_generation_config(generation_config, options)
        device = self.device  # type: ignore[attr-defined]
        eos = _token_list(config.eos_token_id)
        pad = config.pad_token_id if config.pad_token_id is not None else (eos[0] if eos else None)
        encoded = None
        if getattr(self.config, "is_encoder_decoder", False):  # type: ignore[attr-defined]
            # the encoder runs once; the decoder's "prompt" is its start token (transformers' decoder_input_ids)
            input_ids, encoded = self._encode_for_generation(input_ids, attention_mask, config, pad, eos, device)
            attention_mask = None
        else:
            input_ids = _check_input_ids(input_ids, config.bos_token_id, device)
            attention_mask = _prepare_attention_mask(input_ids, attention_mask, pad, eos)
        batch, prompt_len = input_ids.shape
        max_length = self._max_length(config, prompt_len)
        if config.min_new_tokens is not None:  # as transformers: the bound of both min-length processors
            config.min_length = config.min_new_tokens + prompt_len
        if config.min_length > max_length:
            logger.warning("min_length (%d) exceeds max_length (%d): generation stops at max_length", config.min_length,
                           max_length)
        beams = config.num_beams > 1
        if beams and streamer is not None:
            raise GenerationError("a streamer cannot follow beam search (the best beam is only known at the end); "
                                  "pass num_beams=1, or decode the returned sequences")
        expand = max(config.num_beams, config.num_return_sequences)
        if generator is None and seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
        return_dict = config.return_dict_in_generate
        if max_length == prompt_len:  # max_new_tokens=0: nothing to generate
            sequences = input_ids.repeat_interleave(expand, dim=0)
            if streamer is not None:
                streamer.put(sequences.cpu())
                streamer.end()
            return _empty_output(sequences, config, beams) if return_dict else sequences

        eos_ids = torch.tensor(eos, dtype=torch.long, device=device) if eos else None
        padding = (attention_mask != 0).int().argmax(dim=1) if attention_mask is not None else None
        processors = build_logits_processors(
            config, max_length=max_length, prompt_length=prompt_len, eos=eos_ids,
            padding_lengths=padding.repeat_interleave(expand) if padding is not None else None,
            rows_per_prompt=expand, custom=list(logits_processor or ()),
            prefix_allowed_tokens_fn=prefix_allowed_tokens_fn, device=device)
        criteria = StoppingCriteriaList()
        if config.max_time is not None:
            criteria.append(MaxTimeCriteria(config.max_time))
        if config.stop_strings is not None:
            criteria.append(StopStringCriteria(tokenizer, config.stop_strings))
        for criterion in stopping_criteria or ():
            if not callable(criterion):
                raise GenerationError(f"stopping_criteria must hold callables (input_ids, scores) -> bools, got "
                                      f"{type(criterion).__name__}")
            criteria.append(criterion)
        if encoded is not None:
            if return_dict and (config.output_attentions or config.output_hidden_states):
                raise GenerationError("output_attentions / output_hidden_states are not supported for "
                                      "encoder-decoder generation; run the model's forward on the returned "
                                      "sequences to get them")
            runner: ModelRunner = Seq2SeqRunner(self, input_ids, encoded[0], encoded[1], max_length, expand,
                                                config.use_cache)
        else:
            runner = ModelRunner(self, input_ids, attention_mask, max_length, expand, config.use_cache,
                                 output_attentions=return_dict and config.output_attentions,
                                 output_hidden_states=return_dict and config.output_hidden_states)
        if beams:
            return beam_search(runner, num_beams=config.num_beams, max_length=max_length, processors=processors,
                               criteria=criteria or None, eos=eos_ids, pad=pad, do_sample=config.do_sample,
                               generator=generator, length_penalty=float(config.length_penalty),
                               early_stopping=config.early_stopping, num_return_sequences=config.num_return_sequences,
                               output_scores=config.output_scores, output_logits=config.output_logits,
                               output_attentions=config.output_attentions,
                               output_hidden_states=config.output_hidden_states, return_dict=return_dict)
        has_eos = eos_ids is not None or any(hasattr(c, "eos_token_id") for c in criteria)
        if has_eos and pad is None:
            raise GenerationError("a stopping criterion has an eos_token_id but generate has no pad_token_id to fill "
                                  "the finished rows with; pass pad_token_id")
        return _sample(runner, max_length=max_length, processors=processors, criteria=criteria, eos=eos_ids,
                       pad=pad if has_eos else None, do_sample=config.do_sample, generator=generator,
                       streamer=streamer, config=config)

    def _encode_for_generation(self, input_ids: Any, attention_mask: torch.Tensor | None, config: GenerationConfig,
                               pad: int | None, eos: list[int], device: torch.device
                               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor | None]]:
        """An encoder-decoder's inputs: the ``(B, 1)`` decoder start tokens, and the encoder output ``(B, S, d)``
        with the encoder mask (padding may sit on either side: the encoder attends only to what the mask allows)."""
        if input_ids is None:
            raise GenerationError(f"{type(self).__name__}.generate needs input_ids for its encoder; pass "
                                  f"tokenizer(texts, padding=True, return_tensors='pt') as **inputs")
        input_ids = _check_input_ids(input_ids, None, device)
        if attention_mask is None and pad is not None and pad not in eos:
            attention_mask = input_ids.ne(pad).long()  # as transformers infers it
        if attention_mask is not None:
            attention_mask = attention_mask.to(device)
            if attention_mask.dim() == 1:
                attention_mask = attention_mask[None]
            if attention_mask.shape != input_ids.shape:
                raise GenerationError(f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has "
                                      f"{tuple(input_ids.shape)}; pass the mask the tokenizer returned with the ids")
        start = config.decoder_start_token_id
        if start is None:
            start = getattr(self.config, "decoder_start_token_id", None)  # type: ignore[attr-defined]
        if start is None:
            start = config.bos_token_id
        if start is None:
            raise GenerationError("generate found no decoder_start_token_id (nor bos_token_id) to start the decoder "
                                  "from; pass decoder_start_token_id")
        encoder_hidden_states = self.get_encoder()(input_ids, attention_mask)  # type: ignore[attr-defined]
        if not isinstance(encoder_hidden_states, torch.Tensor):  # an output object
            encoder_hidden_states = encoder_hidden_states[0]
        decoder_input_ids = torch.full((input_ids.shape[0], 1), int(start), dtype=torch.long, device=device)
        return decoder_input_ids, (encoder_hidden_states, attention_mask)

    def _max_length(self, config: GenerationConfig, prompt_len: int) -> int:
        """The total length to stop at (transformers' ``_prepare_generated_length``), checked against the model."""
        limit = getattr(self.config, "max_position_embeddings", None)  # type: ignore[attr-defined]
        if config.max_new_tokens is not None:
            max_length = prompt_len + config.max_new_tokens
            asked = f"prompt ({prompt_len} tokens) + max_new_tokens ({config.max_new_tokens}) = {max_length}"
        elif not config.is_set("max_length"):  # transformers' default: 20 new tokens, within the positions
            max_length = prompt_len + config.max_length
            if limit is not None and not self.computes_positions:
                max_length = min(max_length, limit)
            asked = f"prompt ({prompt_len} tokens) + the default 20 new tokens"
        else:
            max_length = config.max_length
            asked = f"max_length ({max_length})"
            if max_length <= prompt_len:
                raise GenerationError(f"the prompt has {prompt_len} tokens and max_length is {max_length}, which "
                                      f"leaves no new token; pass max_new_tokens (tokens after the prompt) or a "
                                      f"larger max_length")
        if limit is not None and max_length > limit and self.computes_positions:
            logger.warning("%s goes past the %d positions the model was trained on (max_position_embeddings): "
                           "its output may degrade there", asked, limit)
        elif limit is not None and max_length > limit:
            raise GenerationError(f"{asked} exceeds the {limit} positions the model has; shorten the prompt or ask "
                                  f"for fewer tokens")
        if max_length <= prompt_len and config.max_new_tokens != 0:
            raise GenerationError(f"the prompt has {prompt_len} tokens, all the {limit} positions the model has; "
                                  f"shorten the prompt")
        return max_length


def _check_input_ids(input_ids: Any, bos_token_id: int | None, device: torch.device) -> torch.Tensor:
    if input_ids is None:  # transformers starts from the BOS token, one row
        if bos_token_id is None:
            raise GenerationError("generate got no input_ids and the generation config has no bos_token_id to start "
                                  "from; pass a prompt (tokenizer(text, return_tensors='pt'))")
        return torch.full((1, 1), bos_token_id, dtype=torch.long, device=device)
    if (not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.long, torch.int)
            or input_ids.dim() not in (1, 2)):
        raise GenerationError(f"input_ids must be a (batch, length) tensor of token ids, got "
                              f"{type(input_ids).__name__}{tuple(getattr(input_ids, 'shape', ()))}; "
                              f"tokenize with return_tensors='pt'")
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if input_ids.shape[1] == 0:
        raise GenerationError("input_ids is empty; generate needs a prompt of at least one token (e.g. the BOS token)")
    return input_ids.to(device=device, dtype=torch.long)


def _prepare_attention_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, pad: int | None,
                            eos: list[int]) -> torch.Tensor | None:
    """The padding mask to use, or None where there is no padding (as transformers drops an all-ones mask)."""
    if attention_mask is None and pad is not None and pad not in eos:
        # transformers infers the mask from pad tokens when they cannot be confused with EOS
        attention_mask = input_ids.ne(pad).long()
    if attention_mask is None:
        return None
    attention_mask = attention_mask.to(input_ids.device)
    if attention_mask.dim() == 1:
        attention_mask = attention_mask[None]
    if attention_mask.shape != input_ids.shape:
        raise GenerationError(f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has "
                              f"{tuple(input_ids.shape)}; pass the mask the tokenizer returned with the ids")
    if bool(attention_mask.all()):
        return None
    if not bool(attention_mask[:, -1].all()):
        logger.warning("a prompt is right-padded (its attention_mask ends in 0); generation continues after the "
                       "padding, which gives wrong text: tokenize with padding_side='left'")
    return attention_mask


def _empty_output(sequences: torch.Tensor, config: GenerationConfig, beams: bool) -> Any:
    empty = lambda on: () if on else None  # noqa: E731
    if beams:
        return GenerateBeamDecoderOnlyOutput(
            sequences=sequences, scores=empty(config.output_scores), logits=empty(config.output_logits),
            sequences_scores=torch.zeros(sequences.shape[0], device=sequences.device) if config.output_scores else None,
            beam_indices=torch.zeros(sequences.shape[0], 0, dtype=torch.int32, device=sequences.device))
    return GenerateDecoderOnlyOutput(sequences=sequences, scores=empty(config.output_scores),
                                     logits=empty(config.output_logits))


def _sample(runner: ModelRunner, *, max_length: int, processors: LogitsProcessorList, criteria: StoppingCriteriaList,
            eos: torch.Tensor | None, pad: int | None, do_sample: bool, generator: torch.Generator | None,
            streamer: Any, config: GenerationConfig) -> torch.Tensor | GenerateDecoderOnlyOutput:
    """Greedy decoding or multinomial sampling (transformers' ``_sample``) over ``runner``'s rows."""
    prompt_len, device = runner.prompt_length, runner.prompt.device
    rows = runner.rows
    return_dict = config.return_dict_in_generate
    scores_out: tuple[torch.Tensor, ...] | None = () if return_dict and config.output_scores else None
    logits_out: tuple[torch.Tensor, ...] | None = () if return_dict and config.output_logits else None
    attentions: tuple[Any, ...] | None = () if return_dict and config.output_attentions else None
    hidden_states: tuple[Any, ...] | None = () if return_dict and config.output_hidden_states else None
    sequences = torch.empty(rows, max_length, dtype=torch.long, device=device)  # one buffer, filled in place
    sequences[:, :prompt_len] = runner._repeat(runner.prompt)
    pad_id = torch.tensor(pad if pad is not None else 0, dtype=torch.long, device=device)
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    cur = prompt_len
    if streamer is not None:
        streamer.put(sequences[:, :prompt_len].cpu())
    try:
        logits = runner.prefill()  # (rows, V)
        while True:
            scores = processors(sequences[:, :cur], logits) if processors else logits
            if scores_out is not None:
                scores_out += (scores,)
            if logits_out is not None:
                logits_out += (logits,)
            if attentions is not None:
                attentions += (runner.attentions,)
            if hidden_states is not None:
                hidden_states += (runner.hidden_states,)
            if do_sample:
                next_tokens = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).squeeze(1)
            else:
                next_tokens = scores.argmax(dim=-1)
            if pad is not None:  # finished rows get the pad id
                next_tokens = torch.where(unfinished, next_tokens, pad_id)
            sequences[:, cur] = next_tokens
            cur += 1
            if eos is not None:
                unfinished &= ~torch.isin(next_tokens, eos)
            if criteria:
                unfinished &= ~criteria(sequences[:, :cur], scores_out)
            if streamer is not None:
                streamer.put(next_tokens.cpu())
            if cur == max_length or ((eos is not None or criteria) and not bool(unfinished.any())):
                break
            logits = runner.step(sequences[:, :cur])
    finally:
        if streamer is not None:
            streamer.end()  # also on error, so a consumer iterating the streamer is never left waiting
    sequences = sequences[:, :cur]
    if not return_dict:
        return sequences
    return GenerateDecoderOnlyOutput(sequences=sequences, scores=scores_out, logits=logits_out, attentions=attentions,
                                     hidden_states=hidden_states, cache=runner.cache)
