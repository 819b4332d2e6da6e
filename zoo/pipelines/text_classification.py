"""text-classification (alias sentiment-analysis): labels and scores for texts or text pairs.

Outputs and defaults follow transformers' TextClassificationPipeline: softmax over several labels, sigmoid for one
label or multi-label models, no function for regression; a single text without ``top_k`` gives ``[{label, score}]``.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import PipelineError
from zoo.pipelines.base import Feature, Pipeline

FUNCTIONS = ("softmax", "sigmoid", "none")
_UNSET = object()


class TextClassificationPipeline(Pipeline):
    task = "text-classification"
    model_task = "sequence-classification"
    default_batch_size = 32

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        out: dict[str, Any] = {}
        if "top_k" in options:
            top_k = options.pop("top_k")
            if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
                raise PipelineError(f"top_k must be a positive int or None (all labels), got {top_k!r}")
            out["top_k"] = top_k
        if "function_to_apply" in options:
            function = options.pop("function_to_apply")
            function = str(function).lower() if function is not None else None
            if function not in (*FUNCTIONS, "default", None):
                raise PipelineError(f"function_to_apply must be one of {', '.join(FUNCTIONS)} or 'default', got {function!r}")
            out["function_to_apply"] = None if function == "default" else function
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} (it takes top_k, function_to_apply)")
        return out

    def split_input(self, item: Any) -> tuple[str, str | None]:
        """(text, text_pair or None) of a string or a {"text", "text_pair"} dict, checked."""
        if isinstance(item, dict):
            if "text" not in item:
                raise PipelineError(f"{self.task}: a dict input needs a 'text' key (and optionally 'text_pair'), got {sorted(item)}")
            text, pair = self.check_text(item["text"], "text"), item.get("text_pair")
            if pair is not None:
                self.check_text(pair, "text_pair")
            return text, pair
        return self.check_text(item), None

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        return self.preprocess_batch([item], options)[0]

    def preprocess_batch(self, items: list[Any], options: dict[str, Any]) -> list[list[Feature]]:
        # one tokenizer call for the single texts and one for the pairs: the Rust batch is much faster than a loop
        split = [self.split_input(item) for item in items]
        out: list[list[Feature]] = [[] for _ in items]
        singles = [i for i, (_, pair) in enumerate(split) if pair is None]
        pairs = [i for i, (_, pair) in enumerate(split) if pair is not None]
        for group, with_pair in ((singles, False), (pairs, True)):
            if not group:
                continue
            enc = self.encode_texts([split[i][0] for i in group], [split[i][1] for i in group] if with_pair else None)
            for row, i in enumerate(group):
                out[i] = [self.features_of(enc, row)]
        return out

    def function_for(self, requested: str | None) -> str:
        if requested is not None:
            return requested
        config = self.model.config
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        return "softmax"

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        logits = outputs[0]["logits"]  # (num_labels,)
        function = self.function_for(options.get("function_to_apply"))
        scores = logits.softmax(-1) if function == "softmax" else logits.sigmoid() if function == "sigmoid" else logits
        id2label = self.model.config.id2label or {i: f"LABEL_{i}" for i in range(len(scores))}
        ranked = [{"label": id2label[i], "score": float(scores[i])} for i in range(len(scores))]
        top_k = options.get("top_k", _UNSET)
        if top_k is _UNSET:
            best = int(scores.argmax())
            return {"label": id2label[best], "score": float(scores[best])}
        ranked.sort(key=lambda r: r["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs and "top_k" not in self.defaults:
            return [result]  # transformers wraps a single text's best label in a list
        return result
