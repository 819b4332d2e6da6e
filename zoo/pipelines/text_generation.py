"""text-generation: continue prompts with a causal LM (``model.generate``), whole or streamed.

Outputs follow transformers' TextGenerationPipeline (pipelines/text_generation.py): per prompt a list of
``{"generated_text": prompt + continuation}`` (``return_full_text=False``: the continuation only;
``return_tensors=True``: ``{"generated_token_ids": [...]}``), the continuation decoded without special tokens.
Generation options are those of :meth:`zoo.generation.GenerationMixin.generate` (every GenerationConfig field
but the output flags, and ``seed``) and default as it does, from the model's generation config: greedy,
``max_new_tokens=20`` unless ``max_length`` is given; ``do_sample=True`` with ``temperature``, ``top_k``, ``top_p``
and ``seed`` samples; ``num_beams`` searches beams; ``num_return_sequences=n`` gives n results per prompt;
``stop_strings`` use the pipeline's tokenizer.

Prompts of a list are left-padded into batches of similar length (``batch_size``, default 1 as in transformers).
A prompt that would not leave room for ``max_new_tokens`` in the model's positions keeps its last tokens, with a
warning. ``stream=True`` (one prompt) returns an iterator of text chunks as they are generated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from zoo.errors import PipelineError
from zoo.generation.config import EXTRA_OUTPUT_FLAGS, FIELDS
from zoo.pipelines.base import Feature, Pipeline

logger = logging.getLogger(__name__)

#: Options passed through to generate(), with the checks each needs here (generate() checks the values). The output
#: flags are left out: the pipeline returns text, not scores.
GENERATE_OPTIONS = tuple(k for k in FIELDS if k not in EXTRA_OUTPUT_FLAGS and k != "return_dict_in_generate") + ("seed",)
OUTPUT_OPTIONS = ("return_full_text", "return_tensors", "return_text", "clean_up_tokenization_spaces",
                  "skip_special_tokens", "stream", "prefix")
DEFAULT_MAX_NEW_TOKENS = 20


class TextGenerationPipeline(Pipeline):
    task = "text-generation"
    model_task = "causal-lm"
    default_batch_size = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.model, "generate"):
            raise PipelineError(f"{self.task}: {type(self.model).__name__} cannot generate; use a causal LM "
                                f"(a model with a 'causal-lm' head)")

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        out = {k: options.pop(k) for k in GENERATE_OPTIONS + OUTPUT_OPTIONS if k in options}
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} (it takes "
                                f"{', '.join(GENERATE_OPTIONS + OUTPUT_OPTIONS)})")
        new = out.get("max_new_tokens")
        if new is not None and (not isinstance(new, int) or isinstance(new, bool) or new < 0):
            raise PipelineError(f"max_new_tokens must be an int >= 0, got {new!r}")
        if out.get("return_full_text") is not None and out.get("return_tensors"):
            raise PipelineError("return_full_text and return_tensors exclude each other: tensors hold every token")
        return out

    # --- running -----------------------------------------------------------------------------------------------------

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        stream = kwargs.pop("stream", self.defaults.get("stream", False))
        if stream:
            if not isinstance(inputs, str):
                raise PipelineError(f"{self.task}: stream=True streams one prompt; pass a single string")
            return self.stream(inputs, **kwargs)
        return super().__call__(inputs, **kwargs)

    def stream(self, prompt: str, **options: Any) -> Iterator[str]:
        """Yield the continuation of ``prompt`` as text chunks while it is generated."""
        from zoo.generation import stream_generate

        opts = {**self.defaults, **self.check_options(options)}
        opts.pop("stream", None)
        feature = self.preprocess(prompt, opts)[0]
        input_ids = self._torch.tensor([feature.inputs["input_ids"]], device=self.device)
        kwargs = self.generate_kwargs(opts)
        kwargs.pop("tokenizer", None)  # stream_generate hands its own to generate
        return stream_generate(self.model, self.tokenizer, input_ids, **kwargs)

    def generate_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        kwargs = {k: options[k] for k in GENERATE_OPTIONS if k in options}
        if "max_length" not in kwargs:
            kwargs.setdefault("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
        if "stop_strings" in kwargs:
            kwargs["tokenizer"] = self.tokenizer
        return kwargs

    # --- features ----------------------------------------------------------------------------------------------------

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        prompt = self.check_text(item, "prompt")
        text = options.get("prefix", "") + prompt
        enc = self.tokenizer(text, add_special_tokens=False)
        ids = list(enc["input_ids"])
        if not ids:
            raise PipelineError(f"{self.task}: the prompt {prompt!r} has no tokens; pass some text")
        new = options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS if "max_length" not in options else 1)
        room = self.max_input_length - new
        if room < 1:
            raise PipelineError(f"{self.task}: max_new_tokens={new} leaves no room for the prompt in the model's "
                                f"{self.max_input_length} positions; ask for fewer tokens")
        if len(ids) > room:
            # keep the end of the prompt: it is what the continuation follows ("hole" in transformers' terms)
            logger.warning("%s: the prompt has %d tokens and max_new_tokens=%d, more than the model's %d positions; "
                           "only its last %d tokens are used", self.task, len(ids), new, self.max_input_length, room)
            ids = ids[-room:]
        return [Feature({"input_ids": ids, "attention_mask": [1] * len(ids)}, {"prompt": prompt})]

    def plan_batches(self, lengths: list[int], size: int) -> list[tuple[int, int]]:
        # decoding steps, not prompt padding, dominate the cost: full batches of similar-length prompts
        return [(i, min(i + size, len(lengths))) for i in range(0, len(lengths), size)]

    def run_batch(self, features: list[Feature], opts: dict[str, Any]) -> list[dict[str, Any]]:
        batch = self.collate(features, padding_side="left")
        try:
            sequences = self.model.generate(batch["input_ids"], batch["attention_mask"], **self.generate_kwargs(opts))
        except ValueError as exc:  # generate() checks the sampling options
            raise PipelineError(f"{self.task}: {exc}") from None
        prompt_len = batch["input_ids"].shape[1]
        n = sequences.shape[0] // len(features)  # num_return_sequences rows per prompt, in prompt order
        return [{"new_ids": sequences[i * n : (i + 1) * n, prompt_len:].cpu()} for i in range(len(features))]

    # --- results -----------------------------------------------------------------------------------------------------

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        feature = features[0]
        results = []
        for new_ids in outputs[0]["new_ids"].tolist():  # one per returned sequence
            if options.get("return_tensors"):
                results.append({"generated_token_ids": feature.inputs["input_ids"] + new_ids})
                continue
            text = self.tokenizer.decode(new_ids, skip_special_tokens=options.get("skip_special_tokens", True),
                                         clean_up_tokenization_spaces=options.get("clean_up_tokenization_spaces"))
            if options.get("return_full_text", True):
                text = feature.meta["prompt"] + text
            results.append({"generated_text": text})
        return results
