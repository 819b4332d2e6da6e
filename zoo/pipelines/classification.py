"""What text-classification and image-classification share: their options and how logits become labels.

The scoring function follows transformers' pipelines: none for regression, sigmoid for one label or multi-label
models, softmax otherwise, unless ``function_to_apply`` says which.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import PipelineError

FUNCTIONS = ("softmax", "sigmoid", "none")


class ClassificationMixin:
    """``check_options`` (top_k, function_to_apply) and ``ranked_labels`` for a Pipeline whose model gives logits."""

    task: str
    model: Any

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

    def function_for(self, requested: str | None) -> str:
        if requested is not None:
            return requested
        config = self.model.config
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        return "softmax"

    def ranked_labels(self, logits: Any, options: dict[str, Any]) -> list[dict[str, Any]]:
        """Every label with its score, best first (a stable sort: ties keep the label order)."""
        function = self.function_for(options.get("function_to_apply"))
        scores = logits.softmax(-1) if function == "softmax" else logits.sigmoid() if function == "sigmoid" else logits
        id2label = self.model.config.id2label or {i: f"LABEL_{i}" for i in range(len(scores))}
        ranked = [{"label": id2label[i], "score": float(scores[i])} for i in range(len(scores))]
        ranked.sort(key=lambda r: r["score"], reverse=True)
        return ranked
