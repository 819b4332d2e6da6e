"""text-classification (alias sentiment-analysis): labels and scores for texts or text pairs.

Outputs and defaults follow transformers' TextClassificationPipeline: softmax over several labels, sigmoid for one
label or multi-label models, no function for regression; a single text without ``top_k`` gives ``[{label, score}]``.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import PipelineError
from zoo.pipelines.base import Feature, Pipeline
from zoo.pipelines.classification import ClassificationMixin

_UNSET = object()


class TextClassificationPipeline(ClassificationMixin, Pipeline):
    task = "text-classification"
    model_task = "sequence-classification"
    default_batch_size = 32

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

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        ranked = self.ranked_labels(outputs[0]["logits"], options)  # logits: (num_labels,)
        top_k = options.get("top_k", _UNSET)
        if top_k is _UNSET:
            return ranked[0]  # transformers' legacy output: the best label alone
        return ranked if top_k is None else ranked[:top_k]

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs and "top_k" not in self.defaults:
            return [result]  # transformers wraps a single text's best label in a list
        return result
