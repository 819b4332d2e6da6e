"""image-classification: labels and scores for images (file paths, PIL images, arrays, tensors, or lists of them).

Outputs and defaults follow transformers' ImageClassificationPipeline: the top 5 labels (``top_k``, capped at the
number of labels; ``None`` for all) as ``[{"label", "score"}]`` per image, softmax over several labels, sigmoid
for one label or multi-label models, nothing for regression. Files and PIL images are opened upright and converted
to RGB as transformers' ``load_image`` does; arrays and tensors go to the image processor as they are. Images are
processed one by one, then batched on the device (images that come out in different sizes are forwarded apart).
"""

from __future__ import annotations

import os
from typing import Any

from zoo.errors import ImageError, MissingDependencyError, PipelineError
from zoo.pipelines.base import Feature, Pipeline
from zoo.pipelines.classification import ClassificationMixin



class ImageFeature(Feature):
    """One processed image; its length is its pixel count, so equal sizes end up batched together."""

    @property
    def length(self) -> int:
        pixels = self.inputs["pixel_values"]
        return int(pixels.shape[-1] * pixels.shape[-2])


class ImageClassificationPipeline(ClassificationMixin, Pipeline):
    task = "image-classification"
    model_task = "image-classification"
    default_batch_size = 8
    needs_tokenizer = False

    def __init__(self, model: Any, tokenizer: Any = None, *, image_processor: Any = None, **kwargs: Any) -> None:
        super().__init__(model, None, **kwargs)
        # pipeline() hands the processor from load_parts over in the tokenizer's place
        processor = image_processor if image_processor is not None else tokenizer
        if processor is None:
            from zoo.auto import AutoImageProcessor

            processor = AutoImageProcessor.from_config(self.model.config)
        self.image_processor = processor

    @classmethod
    def load_parts(cls, model: str, *, model_kwargs: dict[str, Any] | None = None,
                   **hub_kwargs: Any) -> tuple[Any, Any]:
        """Model and image processor of a folder or Hub repo (one revision lookup for both); ``model_kwargs`` go
        to the model's from_pretrained."""
        from zoo.auto import AutoImageProcessor, architecture_of
        from zoo.hub import repo_files

        repo = repo_files(model, **hub_kwargs)
        arch, _ = architecture_of(repo)
        model_obj = arch.model_class(cls.model_task).from_pretrained(repo, **(model_kwargs or {}))
        return model_obj, AutoImageProcessor.from_pretrained(repo)

    # --- options and inputs --------------------------------------------------------------------------------------------

    def is_single(self, inputs: Any) -> bool:
        from zoo.image_processing import is_image_like

        return is_image_like(inputs)

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        import torch

        from zoo.image_processing import is_array, is_pil_image, load_image

        if item is None:
            raise PipelineError(f"{self.task}: an input is None; pass an image file path, a PIL image, an array or a tensor")
        try:
            if isinstance(item, (str, os.PathLike)) or is_pil_image(item):
                item = load_image(item)
                item = item if item.mode == "RGB" else item.convert("RGB")  # as transformers' load_image does
            elif not (is_array(item) or isinstance(item, torch.Tensor)):
                raise PipelineError(f"{self.task}: cannot read an image from a {type(item).__name__}; pass a file path, "
                                    f"a PIL image, a numpy array or a torch tensor")
            pixels = self.image_processor(item, return_tensors=None)["pixel_values"][0]  # (C, H, W)
        except (ImageError, MissingDependencyError) as exc:
            raise PipelineError(f"{self.task}: {exc}") from None
        return [ImageFeature({"pixel_values": pixels})]

    # --- batching ------------------------------------------------------------------------------------------------------

    def run_batch(self, features: list[Feature], opts: dict[str, Any]) -> list[dict[str, Any]]:
        """Forward the batch, one stack per image size (a processor without a crop can give several sizes)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, feature in enumerate(features):
            groups.setdefault(tuple(feature.inputs["pixel_values"].shape), []).append(i)
        rows: list[dict[str, Any]] = [{} for _ in features]
        for ids in groups.values():
            for i, row in zip(ids, super().run_batch([features[i] for i in ids], opts)):
                rows[i] = row
        return rows

    def collate(self, features: list[Feature], padding_side: str | None = None) -> dict[str, Any]:
        pixels = self._torch.stack([f.inputs["pixel_values"] for f in features])  # (B, C, H, W)
        return {"pixel_values": pixels.to(device=self.device, dtype=self.model.dtype)}

    # --- results -------------------------------------------------------------------------------------------------------

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        ranked = self.ranked_labels(outputs[0]["logits"], options)  # logits: (num_labels,)
        top_k = options.get("top_k", 5)
        return ranked if top_k is None else ranked[:top_k]
