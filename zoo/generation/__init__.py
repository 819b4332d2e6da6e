"""Text generation for every causal LM: ``generate()`` with transformers' options, results and files.

One idea per module, each readable on its own:

- :mod:`~zoo.generation.mixin`: :class:`GenerationMixin`, ``generate()`` itself and the greedy/sampling loop;
- :mod:`~zoo.generation.beam_search`: batched beam search and beam sampling, the cache reordered in place;
- :mod:`~zoo.generation.runner`: the model's side of a loop (the prompt once, one token per step, the masks);
- :mod:`~zoo.generation.config`: :class:`GenerationConfig` and generation_config.json;
- :mod:`~zoo.generation.logits_process`: the logits processors, in transformers' order;
- :mod:`~zoo.generation.stopping`: stopping criteria (length, EOS, stop strings, time);
- :mod:`~zoo.generation.streamers`: text as it is generated;
- :mod:`~zoo.generation.outputs`: what ``return_dict_in_generate=True`` returns;
- :mod:`~zoo.generation.cache` and :mod:`~zoo.generation.decoding`: the key/value cache and the CPU fast path of
  a decoding step that models use.

The semantics are transformers' (transformers/generation/), and the tests hold zoo's ``generate`` to
transformers' on the same checkpoints. Names load on first use: ``from zoo.generation import GenerationConfig``
loads no torch.
"""

from __future__ import annotations

from zoo.lazy import lazy_exports

_EXPORTS = {
    "zoo.generation.cache": ("KVCache", "causal_attention_mask", "forward_cache"),
    "zoo.generation.decoding": ("SPLIT_MATMUL_MAX_ROWS", "DecodingProjection", "decode_matmul", "decoding_weight",
                                "has_forward_hooks", "project_for_decoding"),
    "zoo.generation.config": ("GENERATION_CONFIG_NAME", "GenerationConfig", "load_generation_config"),
    "zoo.generation.mixin": ("GenerationMixin", "supported_generate_options"),
    "zoo.generation.logits_process": (
        "LogitsProcessor", "LogitsProcessorList", "build_logits_processors", "RepetitionPenaltyLogitsProcessor",
        "NoRepeatNGramLogitsProcessor", "SequenceBiasLogitsProcessor", "NoBadWordsLogitsProcessor",
        "MinLengthLogitsProcessor", "MinNewTokensLengthLogitsProcessor", "PrefixConstrainedLogitsProcessor",
        "ForcedBOSTokenLogitsProcessor", "ForcedEOSTokenLogitsProcessor", "InfNanRemoveLogitsProcessor",
        "ExponentialDecayLengthPenalty", "SuppressTokensLogitsProcessor", "SuppressTokensAtBeginLogitsProcessor",
        "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper", "TypicalLogitsWarper",
        "EpsilonLogitsWarper", "EtaLogitsWarper", "LogitNormalization", "apply_repetition_penalty", "apply_top_k",
        "apply_top_p"),
    "zoo.generation.stopping": ("StoppingCriteria", "StoppingCriteriaList", "MaxLengthCriteria", "MaxTimeCriteria",
                                "EosTokenCriteria", "StopStringCriteria"),
    "zoo.generation.streamers": ("BaseStreamer", "TextStreamer", "TextIteratorStreamer", "stream_generate"),
    "zoo.generation.outputs": ("GenerateDecoderOnlyOutput", "GenerateBeamDecoderOnlyOutput", "GenerateOutput"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
