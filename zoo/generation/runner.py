"""The model's side of a ``generate`` loop: the prompt once, then one token per row per step, over one cache.

Both loops (greedy/sampling in zoo/generation/mixin.py, beam search in zoo/generation/beam_search.py) ask a
:class:`ModelRunner` for next-token logits and never touch the model, its masks or its cache themselves:

- the prompt runs once for the prompts as given; when each prompt is continued by several rows (beams, or
  ``num_return_sequences``), its cache rows and logits are then repeated, instead of running the same prompt
  again for every row (transformers repeats the prompt before its forward pass; the logits are the same);
- masks are built once: the prompt's ``(B, 1, L, L)`` causal-and-padding mask and one ``(rows, 1, 1, max_length)``
  row whose first ``cur`` columns are the decoding mask at each step; without padding there is no mask at all;
- positions of left-padded rows count real tokens only (``cumsum(mask) - 1``), as transformers' do;
- after the prompt, a step goes through the model's :meth:`~zoo.generation.GenerationMixin.decoding_step` where it
  has one (GPT-2's native kernel), else through ``forward`` with ``logits_to_keep=1``; asking for attentions or
  hidden states always uses ``forward``, which returns them;
- :meth:`ModelRunner.reorder` picks the rows that live on (beam search), in the cache only: the rows of one prompt
  share their mask and positions, and beams never move between prompts.

An encoder-decoder (``config.is_encoder_decoder``, T5) is driven by :class:`Seq2SeqRunner` through the same three
calls: its "prompt" is the ``(B, 1)`` column of ``decoder_start_token_id``, the encoder output and mask come from
one encoder pass per ``generate`` call, and the model's cache also keeps the cross-attention keys/values, computed
by the first decoder call (or by the model's ``fill_cross_attention`` before it) and repeated with the rows for
beams; a beam step then moves only the self-attention rows where the cache can (``reorder_self_attention``). After
that call (T5: from the start token on), a step goes through the model's ``decoding_step`` where it has one (T5's
native kernel), called as ``step(ids (rows, 1), encoder_mask=)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from zoo.generation.cache import KVCache, causal_attention_mask

__all__ = ["ModelRunner", "Seq2SeqRunner"]


class ModelRunner:
    """Next-token logits for ``rows = B * expand`` rows continuing the ``(B, L)`` prompt ``input_ids``."""

    def __init__(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, max_length: int,
                 expand: int = 1, use_cache: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False) -> None:
        self.model = model
        self.prompt = input_ids
        self.batch, self.prompt_length = input_ids.shape
        self.expand = expand
        self.rows = self.batch * expand
        self.max_length = max_length
        self.use_cache = use_cache
        self.extra_outputs = {k: True for k, on in (("output_attentions", output_attentions),
                                                     ("output_hidden_states", output_hidden_states)) if on}
        self.attentions: tuple[torch.Tensor, ...] | None = None  # of the last call, when asked for
        self.hidden_states: tuple[torch.Tensor, ...] | None = None
        self.cache: KVCache | None = None
        self._step: Callable[..., torch.Tensor] | None = None
        device = input_ids.device
        if attention_mask is not None:
            self.key_mask: torch.Tensor | None = torch.ones(self.rows, 1, 1, max_length, dtype=torch.bool, device=device)
            self.key_mask[:, 0, 0, : self.prompt_length] = self._repeat(attention_mask.bool())
            self.prefill_mask, _ = causal_attention_mask(attention_mask, self.prompt_length, 0, device)
            self.positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # (B, L)
            last = self._repeat(self.positions[:, -1:])  # (rows, 1)
            if not use_cache:  # every step runs the whole sequence: positions of all of it
                after = last + torch.arange(1, max_length - self.prompt_length + 1, device=device)
                self.all_positions = torch.cat([self._repeat(self.positions), after], dim=1)  # (rows, max_length)
            self.next_positions: torch.Tensor | None = last
        else:
            self.key_mask = self.prefill_mask = self.positions = self.next_positions = None

    def _repeat(self, t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(self.expand, dim=0) if self.expand > 1 else t

    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor | None,
                 cache: KVCache | None) -> torch.Tensor:
        """Last-position logits (rows, V) in float32; keeps the attentions / hidden states when asked for."""
        if not self.extra_outputs:
            return self.model._forward_for_generation(input_ids, mask, positions, cache)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                         use_cache=cache is not None, logits_to_keep=1, return_dict=True, **self.extra_outputs)
        self.attentions = out.attentions if "output_attentions" in self.extra_outputs else None
        self.hidden_states = out.hidden_states if "output_hidden_states" in self.extra_outputs else None
        return out.logits[:, -1].float()

    def prefill(self) -> torch.Tensor:
        """Run the prompt; logits (rows, V) of the first new token."""
        if self.use_cache:
            self.cache = self.model.new_kv_cache(self.batch, self.max_length)
        logits = self._forward(self.prompt, self.prefill_mask, self.positions, self.cache)  # (B, V)
        if self.expand > 1:
            index = torch.arange(self.batch, device=logits.device).repeat_interleave(self.expand)
            if self.cache is not None:
                self.cache.reorder(index)
            logits = logits.index_select(0, index)
            if self.attentions is not None:
                self.attentions = tuple(a.index_select(0, index) for a in self.attentions)
            if self.hidden_states is not None:
                self.hidden_states = tuple(h.index_select(0, index) for h in self.hidden_states)
        return logits

    def step(self, sequences: torch.Tensor) -> torch.Tensor:
        """Logits (rows, V) after ``sequences`` (rows, cur): the prompt and every token chosen so far."""
        cur = sequences.shape[1]
        if not self.use_cache:
            mask = self.key_mask[:, 0, 0, :cur].long() if self.key_mask is not None else None
            positions = self.all_positions[:, :cur] if self.key_mask is not None else None
            return self._forward(sequences, mask, positions, None)
        if self.next_positions is not None:
            self.next_positions = self.next_positions + 1
        step_mask = self.key_mask[..., :cur] if self.key_mask is not None else None
        if self.extra_outputs:
            return self._forward(sequences[:, -1:], step_mask, self.next_positions, self.cache)
        if self._step is None:  # made when the first token after the prompt needs it
            assert self.cache is not None
            # the model decides, an int8 one (zoo/quantization.py) too: GPT-2's native step reads int8 weights,
            # other steps read float ones and return None for it
            step = self.model.decoding_step(self.cache)
            self._step = step or functools.partial(self.model._forward_for_generation, cache=self.cache)
        return self._step(sequences[:, -1:], step_mask, self.next_positions).float()

    def reorder(self, index: torch.Tensor) -> None:
        """Rows ``index`` (flat, within their prompt's group) carry on, e.g. the beams beam search keeps."""
        if self.cache is not None:
            self.cache.reorder(index)


class Seq2SeqRunner(ModelRunner):
    """Next-token logits of an encoder-decoder's decoder for ``rows = B * expand`` rows continuing the ``(B, T)``
    ``decoder_input_ids`` (the start token), attending to ``encoder_hidden_states`` (B, S, d) under ``encoder_mask``.

    The model's forward takes ``encoder_outputs``, ``attention_mask`` (over the encoder positions),
    ``decoder_input_ids`` (the new decoder positions only), ``past_key_values`` and ``logits_to_keep``, as
    transformers' seq2seq models do. The decoder side has no padding, so it needs no mask nor positions.
    """

    def __init__(self, model: Any, decoder_input_ids: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 encoder_mask: torch.Tensor | None, max_length: int, expand: int = 1, use_cache: bool = True) -> None:
        super().__init__(model, decoder_input_ids, None, max_length, expand, use_cache)
        self.encoder_hidden_states = encoder_hidden_states  # (B, S, d), then (rows, S, d) after prefill
        self.encoder_mask = encoder_mask  # (B, S) or None

    def _decode(self, decoder_input_ids: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        out = self.model(encoder_outputs=self.encoder_hidden_states, attention_mask=self.encoder_mask,
                         decoder_input_ids=decoder_input_ids, past_key_values=cache, use_cache=cache is not None,
                         logits_to_keep=1)
        return out.logits[:, -1].float()  # (rows, V)

    def _step_mask(self) -> torch.Tensor | None:
        """The encoder's padding mask as a step takes it: boolean (rows, S), or None without padding."""
        mask = self.encoder_mask
        return None if mask is None or bool(mask.all()) else mask.bool().contiguous()

    def prefill(self) -> torch.Tensor:
        """Run the start tokens (the cross-attention keys/values are computed here); logits (rows, V).

        Where the model can fill its cache's cross-attention keys/values on their own (``fill_cross_attention``)
        and has a ``decoding_step``, a single start token runs through that step too, instead of a forward pass of
        ~60 small ops per layer (t5-small at batch 1: ~15 ms -> one step, ~4 ms)."""
        logits = None
        if self.use_cache:
            self.cache = self.model.new_kv_cache(self.batch, self.max_length)
            fill = getattr(self.model, "fill_cross_attention", None)
            if fill is not None and self.prompt.shape[1] == 1:
                fill(self.cache, self.encoder_hidden_states)
                step = self.model.decoding_step(self.cache)
                if step is not None:
                    step = functools.partial(step, encoder_mask=self._step_mask())
                    logits = step(self.prompt).float()  # (B, V)
                    # after a reorder into more rows the step is made again (it may take fewer rows than that)
                    self._step = step if self.expand == 1 else None
        if logits is None:  # the forward pass (it reads cross-attention keys/values already filled)
            logits = self._decode(self.prompt, self.cache)  # (B, V)
        if self.expand > 1:
            index = torch.arange(self.batch, device=logits.device).repeat_interleave(self.expand)
            if self.cache is not None:
                self.cache.reorder(index)  # self- and cross-attention rows
            # every row gets its prompt's encoder output; after this, beams never move between prompts, so the
            # rows of one prompt stay identical and need no reordering per step (as ModelRunner's masks)
            self.encoder_hidden_states = self.encoder_hidden_states.index_select(0, index)
            if self.encoder_mask is not None:
                self.encoder_mask = self.encoder_mask.index_select(0, index)
            logits = logits.index_select(0, index)
        return logits

    def reorder(self, index: torch.Tensor) -> None:
        """Beam search's surviving rows: they move only among the beams of one input, whose cross-attention rows
        all hold that input's encoder output (repeated by :meth:`prefill`), so a cache that can leave those rows
        where they are (``reorder_self_attention``, T5Cache) moves only the self-attention rows."""
        if self.cache is not None:
            getattr(self.cache, "reorder_self_attention", self.cache.reorder)(index)

    def step(self, sequences: torch.Tensor) -> torch.Tensor:
        """Logits (rows, V) after the decoder ``sequences`` (rows, cur) so far."""
        if not self.use_cache:  # the whole decoder sequence again, attending to the encoder output
            return self._decode(sequences, None)
        if self._step is None:  # made when the first token after the start token needs it
            step = self.model.decoding_step(self.cache)
            if step is None:
                self._step = functools.partial(self._decode, cache=self.cache)
            else:  # an encoder-decoder's step takes the encoder's padding mask, as a boolean (rows, S) or None
                self._step = functools.partial(step, encoder_mask=self._step_mask())
        return self._step(sequences[:, -1:]).float()
