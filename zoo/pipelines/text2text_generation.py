"""text2text-generation, summarization and translation: an encoder-decoder (T5) writes text for each input.

transformers 5 removed these pipelines; zoo keeps transformers 4's (pipelines/text2text_generation.py) results:
per input ``[{"generated_text": ...}]`` (``summary_text``, ``translation_text``), or with ``return_tensors=True``
``{"generated_token_ids": [...]}`` (``summary_token_ids``, ...); a list of inputs gives a list of those lists,
flattened to one dict per input when each has one result, as transformers 4 did.

What the model's config says for the task is applied as transformers 4 applied it: ``task_specific_params[key]``
(key ``summarization``, ``translation_{src}_to_{tgt}``) gives the ``prefix`` put before every input (T5's
"summarize: ", "translate English to German: ") and generation defaults (``num_beams``, ``max_length``, ...);
without it ``config.prefix``. Generation options layer: the call's, then the task's params, then the model's
generation config (``generate`` reads it itself). Inputs are right-padded into batches (``batch_size``);
``truncation=True`` cuts inputs to the tokenizer's ``model_max_length``, else a longer input is kept whole with a
warning (T5's relative positions have no length limit).
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from zoo.errors import PipelineError
from zoo.pipelines.base import Feature, Pipeline
from zoo.pipelines.text_generation import GENERATE_OPTIONS

logger = logging.getLogger(__name__)

OUTPUT_OPTIONS = ("return_tensors", "return_text", "clean_up_tokenization_spaces", "skip_special_tokens",
                  "truncation", "prefix")
TRANSLATION_TASK = re.compile(r"^translation_([A-Za-z0-9-]+)_to_([A-Za-z0-9-]+)$")


class Text2TextGenerationPipeline(Pipeline):
    task = "text2text-generation"
    model_task = "seq2seq-lm"
    default_batch_size = 1
    #: the results' key prefix: {key}_text / {key}_token_ids
    key: ClassVar[str] = "generated"
    #: extra options this task takes
    task_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.model, "generate") or not getattr(self.model.config, "is_encoder_decoder", False):
            raise PipelineError(f"{self.task}: {type(self.model).__name__} is no encoder-decoder that generates; use "
                                f"a seq2seq LM such as T5 (AutoModelForSeq2SeqLM)")

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        results = super().__call__(inputs, **kwargs)
        # transformers 4: a list of inputs with one result each gives one dict per input, not a list of lists
        if isinstance(results, list) and not self.is_single(inputs) and all(
                isinstance(r, list) and len(r) == 1 for r in results):
            return [r[0] for r in results]
        return results

    def warn_once(self, message: str, *args: Any) -> None:
        """Log a length advice once per pipeline (not once per input)."""
        if not getattr(self, "_advised", False):
            logger.warning(message, *args)
            self._advised = True

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        known = GENERATE_OPTIONS + OUTPUT_OPTIONS + self.task_options
        out = {k: options.pop(k) for k in known if k in options}
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} (it takes {', '.join(known)})")
        return out

    def task_params(self, options: dict[str, Any]) -> dict[str, Any]:
        """The config's task_specific_params for this call (empty when it has none)."""
        params = getattr(self.model.config, "task_specific_params", None) or {}
        return dict(params.get(self.task, {}))

    def generate_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        params = {k: v for k, v in self.task_params(options).items() if k in GENERATE_OPTIONS}
        asked = {k: options[k] for k in GENERATE_OPTIONS if k in options}
        if "max_length" in asked or "max_new_tokens" in asked:  # a length asked replaces the task's length
            params.pop("max_length", None)
            params.pop("max_new_tokens", None)
        return {**params, **asked}

    def prefix(self, options: dict[str, Any]) -> str:
        if "prefix" in options:
            return options["prefix"] or ""
        params = self.task_params(options)
        if "prefix" in params:
            return params["prefix"] or ""
        return getattr(self.model.config, "prefix", None) or ""

    @property
    def max_input_length(self) -> int:
        from zoo.tokenization import VERY_LARGE_INTEGER

        limit = self.tokenizer.model_max_length
        return limit if limit and limit < VERY_LARGE_INTEGER else VERY_LARGE_INTEGER

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        text = self.check_text(item)
        text_in = self.prefix(options) + text
        if options.get("truncation"):  # the tokenizer's truncation: the text is cut, </s> still ends it
            ids = list(self.tokenizer(text_in, truncation=True, max_length=self.max_input_length)["input_ids"])
        else:
            ids = list(self.tokenizer(text_in)["input_ids"])
        if len(ids) > self.max_input_length:
            if not getattr(self, "_warned_length", False):
                logger.warning("%s: an input of %d tokens is longer than the tokenizer's model_max_length (%d); it is "
                               "kept whole (pass truncation=True to cut it)", self.task, len(ids),
                               self.max_input_length)
                self._warned_length = True
        self.check_lengths(len(ids), self.generate_kwargs(options))
        return [Feature({"input_ids": ids, "attention_mask": [1] * len(ids)}, {"text": text})]

    def check_lengths(self, input_length: int, kwargs: dict[str, Any]) -> None:
        """A task's advice on the lengths asked (transformers 4 warned the same)."""

    def plan_batches(self, lengths: list[int], size: int) -> list[tuple[int, int]]:
        return [(i, min(i + size, len(lengths))) for i in range(0, len(lengths), size)]

    def run_batch(self, features: list[Feature], opts: dict[str, Any]) -> list[dict[str, Any]]:
        batch = self.collate(features, padding_side="right")
        try:
            sequences = self.model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                            **self.generate_kwargs(opts))
        except ValueError as exc:  # generate() checks the options' values
            raise PipelineError(f"{self.task}: {exc}") from None
        n = sequences.shape[0] // len(features)
        return [{"ids": sequences[i * n : (i + 1) * n].cpu()} for i in range(len(features))]

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]],
                    options: dict[str, Any]) -> Any:
        results = []
        for ids in outputs[0]["ids"].tolist():
            if options.get("return_tensors"):
                results.append({f"{self.key}_token_ids": ids})
            else:
                text = self.tokenizer.decode(ids, skip_special_tokens=options.get("skip_special_tokens", True),
                                             clean_up_tokenization_spaces=options.get("clean_up_tokenization_spaces",
                                                                                      False))
                results.append({f"{self.key}_text": text})
        return results


class SummarizationPipeline(Text2TextGenerationPipeline):
    task = "summarization"
    key = "summary"

    def check_lengths(self, input_length: int, kwargs: dict[str, Any]) -> None:
        max_length, min_length = kwargs.get("max_length"), kwargs.get("min_length")
        if max_length is not None and min_length is not None and min_length > max_length:
            self.warn_once("summarization: min_length=%d is above max_length=%d", min_length, max_length)
        if max_length is not None and input_length < max_length:
            self.warn_once("summarization: max_length=%d is above the input's %d tokens; consider a smaller "
                           "max_length", max_length, input_length)


class TranslationPipeline(Text2TextGenerationPipeline):
    task = "translation"
    key = "translation"
    task_options = ("src_lang", "tgt_lang")

    def task_params(self, options: dict[str, Any]) -> dict[str, Any]:
        params = getattr(self.model.config, "task_specific_params", None) or {}
        pairs = sorted(k for k in params if TRANSLATION_TASK.match(k))
        src, tgt = options.get("src_lang"), options.get("tgt_lang")
        if src and tgt:
            key = f"translation_{src}_to_{tgt}"
            if key in params:
                return dict(params[key])
            if pairs:
                raise PipelineError(f"translation: the model has no task parameters for {key}; it has "
                                    f"{', '.join(pairs)}: pick one of those tasks")
            return {}
        if pairs:
            if not getattr(self, "_warned_pair", False):
                logger.warning("translation: no src_lang/tgt_lang given; using %s (ask for translation_xx_to_yy to "
                               "choose)", pairs[0])
                self._warned_pair = True
            return dict(params[pairs[0]])
        return {}

    def check_lengths(self, input_length: int, kwargs: dict[str, Any]) -> None:
        max_length = kwargs.get("max_length")
        if max_length is not None and input_length > 0.9 * max_length:
            self.warn_once("translation: the input has %d tokens, close to max_length=%d; consider a larger "
                           "max_length", input_length, max_length)
