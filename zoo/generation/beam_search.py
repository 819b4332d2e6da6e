"""Beam search and beam sampling, batched, with the key/value cache reordered in place after every step.

This is transformers 5's vectorised beam search (generation/utils.py ``GenerationMixin._beam_search`` and its
helpers), step for step, so the sequences, their scores and the beam indices are the same:

- every prompt keeps ``num_beams`` running beams; a step scores all ``num_beams * vocab`` continuations by
  accumulated log-probability (after the logits processors) and keeps the best ``K = max(2, 1 + #eos) * num_beams``
  of them (or, with ``do_sample=True``, draws K of them without replacement), so that ``num_beams`` survive even
  when the best ones all end;
- a continuation that hits a stopping criterion (EOS, max length, a stop string) competes for the ``num_beams``
  finished slots with its score divided by ``new_tokens ** length_penalty``; only the best ``num_beams`` of the K
  may finish at a step;
- ``early_stopping``: True stops a prompt once it has ``num_beams`` finished beams; False stops when the best running
  beam, at its current length, cannot beat the worst finished one; "never" also considers the length bonus a
  positive ``length_penalty`` could still give it (the canonical beam search stopping rule);
- the first step starts from one beam (the others at -1e9), so the beams do not all pick the same tokens.

The cache follows the beams: after each step the rows of the surviving beams are gathered in place over the cached
positions (:meth:`~zoo.generation.KVCache.reorder`); the prompt is never run again.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from zoo.generation.outputs import GenerateBeamDecoderOnlyOutput
from zoo.generation.runner import ModelRunner

__all__ = ["beam_search"]


def _gather_beams(tensor: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``tensor[b, indices[b, k], ...]`` for (B, beams, ...) tensors and (B, k) indices."""
    while indices.dim() < tensor.dim():
        indices = indices.unsqueeze(-1)
    return torch.take_along_dim(tensor, indices, dim=1)


def beam_search(runner: ModelRunner, *, num_beams: int, max_length: int, processors: Any, criteria: Any,
                eos: torch.Tensor | None, pad: int | None, do_sample: bool, generator: torch.Generator | None,
                length_penalty: float, early_stopping: bool | str, num_return_sequences: int, output_scores: bool,
                output_logits: bool, output_attentions: bool, output_hidden_states: bool,
                return_dict: bool) -> torch.Tensor | GenerateBeamDecoderOnlyOutput:
    """Beam search over ``runner``'s prompts (expanded to ``num_beams`` rows each). ``criteria`` are the stopping
    criteria beyond EOS and the length (stop strings, time, the user's), or None."""
    prompt = runner.prompt
    batch, prompt_len = prompt.shape
    device = prompt.device
    n_eos = eos.shape[0] if eos is not None else 0
    keep = max(2, 1 + n_eos) * num_beams
    top_num_beam_mask = torch.cat([torch.ones(num_beams, dtype=torch.bool), torch.zeros(keep - num_beams, dtype=torch.bool)]).to(device)
    # transformers' fill value for sequences that end early: the pad id, unless it is 0 (then the first EOS id)
    fill = -1 if eos is None else (pad if pad else int(eos[0]))

    running_sequences = torch.full((batch, num_beams, max_length), fill, dtype=torch.int64, device=device)
    running_sequences[:, :, :prompt_len] = prompt[:, None, :]
    sequences = running_sequences.clone()
    running_beam_scores = torch.zeros(batch, num_beams, dtype=torch.float, device=device)
    running_beam_scores[:, 1:] = -1e9
    beam_scores = torch.full((batch, num_beams), -1e9, dtype=torch.float, device=device)
    is_sent_finished = torch.zeros(batch, num_beams, dtype=torch.bool, device=device)
    improvable = torch.ones(batch, 1, dtype=torch.bool, device=device)
    running_beam_indices = torch.full((batch, num_beams, max_length - prompt_len), -1, dtype=torch.int32, device=device)
    beam_indices = running_beam_indices.clone()
    batch_offset = torch.arange(batch, device=device).view(-1, 1) * num_beams

    all_scores: tuple[torch.Tensor, ...] | None = () if return_dict and output_scores else None
    raw_logits: tuple[torch.Tensor, ...] | None = () if return_dict and output_logits else None
    attentions: tuple[Any, ...] | None = () if return_dict and output_attentions else None
    hidden_states: tuple[Any, ...] | None = () if return_dict and output_hidden_states else None

    cur_len = prompt_len
    flat_running = prompt.repeat_interleave(num_beams, dim=0)  # (B * beams, L)
    logits = runner.prefill()
    while True:
        log_probs = processors(flat_running, F.log_softmax(logits, dim=-1))  # (B * beams, V)
        if raw_logits is not None:
            raw_logits += (logits.clone(),)
        if all_scores is not None:
            all_scores += (log_probs.clone(),)
        if attentions is not None:
            attentions += (runner.attentions,)
        if hidden_states is not None:
            hidden_states += (runner.hidden_states,)
        vocab = log_probs.shape[-1]
        accumulated = (log_probs.view(batch, num_beams, vocab) + running_beam_scores[:, :, None]).view(batch, -1)

        # the K best (or K sampled) continuations over all beams of each prompt
        if do_sample:
            topk_indices = torch.multinomial(F.softmax(accumulated, dim=-1), num_samples=keep, generator=generator)
            topk_log_probs = torch.gather(accumulated, 1, topk_indices)
            topk_log_probs, order = topk_log_probs.sort(dim=-1, descending=True)
            topk_indices = topk_indices.gather(-1, order)
        else:
            topk_log_probs, topk_indices = torch.topk(accumulated, k=keep)
        topk_beams = topk_indices // vocab
        topk_running_beam_indices = _gather_beams(running_beam_indices, topk_beams)
        topk_running_sequences = _gather_beams(running_sequences, topk_beams)
        topk_ids = topk_indices % vocab
        topk_running_sequences[:, :, cur_len] = topk_ids
        topk_running_beam_indices[:, :, cur_len - prompt_len] = topk_beams + batch_offset

        # which of them end here
        hits = torch.full((batch, keep), cur_len + 1 >= max_length, dtype=torch.bool, device=device)
        if eos is not None:
            hits |= torch.isin(topk_ids, eos)
        if criteria:
            flat = topk_running_sequences[:, :, : cur_len + 1].reshape(batch * keep, cur_len + 1)
            hits |= criteria(flat, all_scores).view(batch, keep)

        # the best unfinished ones run on
        topk_running_log_probs = topk_log_probs + hits.to(torch.float32) * -1.0e9
        next_topk = torch.topk(topk_running_log_probs, k=num_beams)[1]
        running_sequences = _gather_beams(topk_running_sequences, next_topk)
        running_beam_scores = _gather_beams(topk_running_log_probs, next_topk)
        running_beam_indices = _gather_beams(topk_running_beam_indices, next_topk)

        # finished ones among the top num_beams replace worse finished beams
        just_finished = hits & top_num_beam_mask[None, :]
        finished_scores = topk_log_probs / ((cur_len + 1 - prompt_len) ** length_penalty)
        full = torch.all(is_sent_finished, dim=-1, keepdim=True) & (early_stopping is True)
        finished_scores += full.to(torch.float32) * -1.0e9
        finished_scores += (~improvable).to(torch.float32) * -1.0e9
        finished_scores += (~just_finished) * -1.0e9
        merged_scores = torch.cat((beam_scores, finished_scores), dim=1)
        best = torch.topk(merged_scores, k=num_beams)[1]
        sequences = _gather_beams(torch.cat((sequences, topk_running_sequences), dim=1), best)
        beam_scores = _gather_beams(merged_scores, best)
        beam_indices = _gather_beams(torch.cat((beam_indices, topk_running_beam_indices), dim=1), best)
        is_sent_finished = _gather_beams(torch.cat((is_sent_finished, just_finished), dim=1), best)

        # the cache follows the surviving beams
        runner.reorder(running_beam_indices[..., cur_len - prompt_len].reshape(-1))
        cur_len += 1

        # can a running beam still beat the worst finished one?
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - prompt_len
        else:
            best_length = cur_len - prompt_len
        best_possible = running_beam_scores[:, :1] / (best_length**length_penalty)
        worst_finished = torch.where(is_sent_finished, torch.min(beam_scores, dim=1, keepdim=True)[0], -1.0e9)
        improvable = improvable & torch.any(best_possible > worst_finished, dim=-1, keepdim=True)
        exists_open = ~(torch.all(is_sent_finished) & (early_stopping is True))
        if not bool(torch.any(improvable) & exists_open & ~torch.all(hits)):
            break
        flat_running = running_sequences[:, :, :cur_len].reshape(batch * num_beams, cur_len)
        logits = runner.step(flat_running)

    sequences = sequences[:, :num_return_sequences].reshape(batch * num_return_sequences, -1)
    beam_scores = beam_scores[:, :num_return_sequences].reshape(-1)
    beam_indices = beam_indices[:, :num_return_sequences].reshape(batch * num_return_sequences, -1)
    generated = int(((beam_indices + 1).bool()).sum(dim=1).max())  # the longest returned beam
    sequences = sequences[:, : prompt_len + generated]
    beam_indices = beam_indices[:, :generated]
    if not return_dict:
        return sequences
    return GenerateBeamDecoderOnlyOutput(sequences=sequences, sequences_scores=beam_scores if output_scores else None,
                                         scores=all_scores, logits=raw_logits, beam_indices=beam_indices,
                                         attentions=attentions, hidden_states=hidden_states, cache=runner.cache)
