"""feature-extraction: the encoder's hidden states of texts, as tensors, optionally pooled into one vector each.

Per text the result is a ``(T, H)`` tensor of its tokens (special tokens included, padding removed), the same
numbers as transformers' FeatureExtractionPipeline gives as ``[1, T, H]`` nested lists. ``pooling`` ("mean",
"cls", "max", pooled as sentence-transformers pools, see :mod:`zoo.embedding`) gives one ``(H,)`` vector per text,
and ``normalize=True`` scales it to unit length. ``return_tensors="np"`` gives numpy arrays instead of torch.

Speed matters here (it is the embedding workhorse): a chunk of texts is tokenised in one Rust call, texts are
batched by length, pooling runs batched on the device, and nothing becomes a Python list of floats.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import PipelineError
from zoo.pipelines.base import Feature, Pipeline

POOLINGS = ("mean", "cls", "max")
RETURN_TENSORS = ("pt", "np")


class FeatureExtractionPipeline(Pipeline):
    task = "feature-extraction"
    model_task = "base"
    default_batch_size = 32

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        out: dict[str, Any] = {}
        if "pooling" in options:
            pooling = options.pop("pooling")
            if pooling is not None and pooling not in POOLINGS:
                raise PipelineError(f"pooling must be one of {', '.join(POOLINGS)} or None (token vectors), got {pooling!r}")
            out["pooling"] = pooling
        if "normalize" in options:
            out["normalize"] = bool(options.pop("normalize"))
        if "return_tensors" in options:
            kind = options.pop("return_tensors")
            kind = "pt" if kind is True else kind
            if kind not in RETURN_TENSORS:
                raise PipelineError(f"return_tensors must be 'pt' (torch, the default) or 'np' (numpy), got {kind!r}")
            out["return_tensors"] = kind
        if "truncation" in options:
            out["truncation"] = bool(options.pop("truncation"))
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} "
                                f"(it takes pooling, normalize, return_tensors, truncation)")
        return out

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        return self.preprocess_batch([item], options)[0]

    def preprocess_batch(self, items: list[Any], options: dict[str, Any]) -> list[list[Feature]]:
        if options.get("normalize") and options.get("pooling") is None:
            raise PipelineError("normalize=True scales one vector per text to unit length; pass pooling='mean', 'cls' "
                                "or 'max' too")
        texts = [self.check_text(item) for item in items]
        if not options.get("truncation", True):
            too_long = [i for i, ids in enumerate(self.tokenizer(texts)["input_ids"]) if len(ids) > self.max_input_length]
            if too_long:
                raise PipelineError(f"{self.task}: input {too_long[0]} is longer than the model's {self.max_input_length} "
                                    f"tokens and truncation=False; shorten it or allow truncation")
        enc = self.encode_texts(texts)
        return [[self.features_of(enc, row)] for row in range(len(texts))]

    def forward(self, batch: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        hidden = self.model(**batch, return_dict=True).last_hidden_state  # (B, T, H)
        pooling = options.get("pooling")
        if pooling is None:
            return {"hidden": hidden}
        from zoo.embedding import pool

        vectors = pool(hidden, batch["attention_mask"], pooling)  # (B, H)
        if options.get("normalize"):
            vectors = self._torch.nn.functional.normalize(vectors, p=2, dim=1)
        return {"pooled": vectors}

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        out = outputs[0]
        value = out["pooled"] if "pooled" in out else out["hidden"][: features[0].length]
        if options.get("return_tensors") == "np":
            return value.numpy().copy()
        # a copy made outside inference mode is an ordinary tensor (usable with autograd), and frees the batch
        return value.clone()
