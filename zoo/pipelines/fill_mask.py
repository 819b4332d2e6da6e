"""fill-mask: the most likely tokens for each mask token of a text ("[MASK]" for BERT, "<mask>" for RoBERTa).

Outputs follow transformers' FillMaskPipeline (pipelines/fill_mask.py): per mask ``top_k`` (default 5) dicts of
``score``, ``token``, ``token_str`` and ``sequence`` (the text with that token in place; with one mask decoded
without special tokens). A text with one mask gives a list of dicts, a text with several a list per mask (each mask
scored on its own, not jointly). ``targets`` limits the candidates to given words; a word that is not one token is
replaced by its first token, with a warning. A text longer than the model is truncated with a warning, and a mask
that falls in the cut part is an error.
"""

from __future__ import annotations

import logging
from typing import Any

from zoo.errors import PipelineError
from zoo.pipelines.base import Feature, Pipeline

logger = logging.getLogger(__name__)


class FillMaskPipeline(Pipeline):
    task = "fill-mask"
    model_task = "masked-lm"
    default_batch_size = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.tokenizer.mask_token_id is None:
            raise PipelineError(f"{self.task}: the tokenizer defines no mask_token, so there is nothing to fill; use a "
                                f"masked language model's tokenizer")

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        out: dict[str, Any] = {}
        if "top_k" in options:
            top_k = options.pop("top_k")
            if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
                raise PipelineError(f"top_k must be a positive int, got {top_k!r}")
            out["top_k"] = top_k
        if "targets" in options:
            targets = options.pop("targets")
            out["targets"] = None if targets is None else self.target_ids(targets)
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} (it takes top_k, targets)")
        return out

    def target_ids(self, targets: str | list[str]) -> list[int]:
        """Token ids of the candidate words; a word that is not in the vocabulary stands for its first token."""
        if isinstance(targets, str):
            targets = [targets]
        if not targets or not all(isinstance(t, str) for t in targets):
            raise PipelineError(f"targets must be a word or a non-empty list of words, got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        ids: list[int] = []
        for target in targets:
            found = vocab.get(target)
            if found is None:
                pieces = self.tokenizer(target, add_special_tokens=False)["input_ids"]
                if not pieces:
                    logger.warning("%s: the target %r is not in the vocabulary and has no tokens; it is left out", self.task, target)
                    continue
                found = pieces[0]
                logger.warning("%s: the target %r is not in the vocabulary; using its first token %r instead",
                               self.task, target, self.tokenizer.convert_ids_to_tokens(found))
            ids.append(found)
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise PipelineError(f"none of the targets {targets!r} gives a token; pass words of the model's vocabulary")
        return ids

    # --- features ----------------------------------------------------------------------------------------------------

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        return self.preprocess_batch([item], options)[0]

    def preprocess_batch(self, items: list[Any], options: dict[str, Any]) -> list[list[Feature]]:
        texts = [self.check_text(item) for item in items]
        mask_token, mask_id = self.tokenizer.mask_token, self.tokenizer.mask_token_id
        enc = self.encode_texts(texts)
        out = []
        for row, text in enumerate(texts):
            positions = [i for i, t in enumerate(enc["input_ids"][row]) if t == mask_id]
            if not positions:
                if mask_token in text:
                    raise PipelineError(f"{self.task}: the mask token {mask_token} of {text[:60]!r}... lies beyond the "
                                        f"model's {self.max_input_length} tokens and was truncated away; shorten the text")
                raise PipelineError(f"{self.task}: no mask token {mask_token} in the input {text[:80]!r}; put "
                                    f"{mask_token} where a word should be predicted")
            out.append([self.features_of(enc, row, positions=positions)])
        return out

    def forward(self, batch: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        torch = self._torch
        logits = self.model(**batch, return_dict=True).logits  # (B, T, V)
        is_mask = batch["input_ids"] == self.tokenizer.mask_token_id  # (B, T)
        # gather only the masked rows (B, M, V): the full (B, T, V) would be hundreds of MB for a 50k vocabulary
        most = int(is_mask.sum(dim=1).max())
        positions = torch.zeros(is_mask.shape[0], most, dtype=torch.long, device=logits.device)
        for b in range(is_mask.shape[0]):
            where = is_mask[b].nonzero().squeeze(-1)
            positions[b, : len(where)] = where
        rows = torch.gather(logits, 1, positions.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
        return {"mask_logits": rows}

    # --- results -----------------------------------------------------------------------------------------------------

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        feature = features[0]
        positions = feature.meta["positions"]
        targets = options.get("targets")
        top_k = min(options.get("top_k", 5), len(targets)) if targets else options.get("top_k", 5)
        probs = outputs[0]["mask_logits"][: len(positions)].softmax(dim=-1)  # (M, V)
        if targets:
            probs = probs[:, targets]
        values, predictions = probs.topk(top_k)
        single = len(positions) == 1
        ids = feature.inputs["input_ids"]
        pad = self.tokenizer.pad_token_id
        result = []
        for position, row_values, row_predictions in zip(positions, values.tolist(), predictions.tolist()):
            row = []
            for score, p in zip(row_values, row_predictions):
                token = targets[p] if targets else p
                filled = list(ids)
                filled[position] = token
                filled = [t for t in filled if t != pad]
                row.append({"score": score, "token": token, "token_str": self.tokenizer.decode([token]),
                            "sequence": self.tokenizer.decode(filled, skip_special_tokens=single)})
            result.append(row)
        return result[0] if single else result
