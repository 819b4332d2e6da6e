"""token-classification (alias ner): a label per token, or entities grouped from them, with offsets into the text.

Semantics follow transformers' TokenClassificationPipeline (pipelines/token_classification.py) exactly, so results
can be compared one to one: softmax scores per token, special tokens dropped, ``ignore_labels`` (default ``["O"]``)
filtered after grouping, and five aggregation strategies:

- ``none``: one dict per token: ``entity``, ``score``, ``index``, ``word``, ``start``, ``end``;
- ``simple``: adjacent tokens with the same tag (B-/I- prefixes, a B- starts a new entity) grouped into
  ``entity_group`` dicts with the mean score;
- ``first`` / ``average`` / ``max``: tokens are first fused into words, so a word never gets two tags (the label of
  its first token, of its mean scores, or of its most confident token), then grouped as ``simple`` does.

Which tokens continue a word: for WordPiece-style vocabularies (a ``continuing_subword_prefix``) a token whose text
differs in length from its span of the input; otherwise transformers' fallback heuristic, a token not preceded by a
space. ``stride`` runs texts longer than the model in overlapping windows and keeps, where entities of two windows
overlap, the longer (then the more confident) one. Without it a long text is truncated, with a warning.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from zoo.errors import PipelineError
from zoo.pipelines.base import Feature, Pipeline

logger = logging.getLogger(__name__)

STRATEGIES = ("none", "simple", "first", "average", "max")
_WORD_STRATEGIES = ("first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    task = "token-classification"
    model_task = "token-classification"
    default_batch_size = 8

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        out: dict[str, Any] = {}
        if "aggregation_strategy" in options:
            strategy = options.pop("aggregation_strategy")
            strategy = "none" if strategy is None else str(getattr(strategy, "value", strategy)).lower()
            if strategy not in STRATEGIES:
                raise PipelineError(f"aggregation_strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
            out["aggregation_strategy"] = strategy
        if "ignore_labels" in options:
            labels = options.pop("ignore_labels")
            if labels is not None and (isinstance(labels, str) or not all(isinstance(x, str) for x in labels)):
                raise PipelineError(f"ignore_labels must be a list of label names, got {labels!r}")
            out["ignore_labels"] = None if labels is None else list(labels)
        if "stride" in options:
            stride = options.pop("stride")
            if stride is not None:
                if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
                    raise PipelineError(f"stride must be a non-negative int (tokens shared by neighbouring windows), got {stride!r}")
                if stride >= self.max_input_length:
                    raise PipelineError(f"stride={stride} must be less than the model's {self.max_input_length} tokens "
                                        f"(less still, as the special tokens take room too)")
            out["stride"] = stride
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} "
                                f"(it takes aggregation_strategy, ignore_labels, stride)")
        return out

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        strategy = kwargs.get("aggregation_strategy", self.defaults.get("aggregation_strategy"))
        stride = kwargs.get("stride", self.defaults.get("stride"))
        if stride is not None and str(getattr(strategy, "value", strategy)).lower() == "none":
            raise PipelineError("stride runs the whole text in windows, which needs entities merged across them; pass "
                                "aggregation_strategy='simple', 'first', 'average' or 'max' with it")
        return super().__call__(inputs, **kwargs)

    # --- features ----------------------------------------------------------------------------------------------------

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        return self.preprocess_batch([item], options)[0]

    def preprocess_batch(self, items: list[Any], options: dict[str, Any]) -> list[list[Feature]]:
        texts = [self.check_text(item) for item in items]
        stride = options.get("stride")
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_input_length, stride=stride or 0,
                             return_overflowing_tokens=True, return_special_tokens_mask=True, return_offsets_mapping=True)
        out: list[list[Feature]] = [[] for _ in texts]
        for row, index in enumerate(enc["overflow_to_sample_mapping"]):
            if out[index] and stride is None:
                self.warn_truncated()  # transformers keeps only the first window unless a stride is given
                continue
            out[index].append(self.features_of(enc, row, offsets=enc["offset_mapping"][row],
                                               special=enc["special_tokens_mask"][row]))
        return out

    # --- results -----------------------------------------------------------------------------------------------------

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        strategy = options.get("aggregation_strategy", "none")
        ignore = options.get("ignore_labels")
        ignore = ["O"] if ignore is None else ignore
        entities: list[dict[str, Any]] = []
        for feature, output in zip(features, outputs):
            logits = output["logits"][: feature.length].numpy()  # (T, num_labels)
            maxes = np.max(logits, axis=-1, keepdims=True)
            shifted = np.exp(logits - maxes)
            scores = shifted / shifted.sum(axis=-1, keepdims=True)
            pre = self.gather_pre_entities(item, feature, scores, strategy)
            grouped = self.aggregate(pre, strategy)
            entities.extend(e for e in grouped if e.get("entity") not in ignore and e.get("entity_group") not in ignore)
        if len(features) > 1:
            entities = aggregate_overlapping_entities(entities)
        return entities

    def label(self, index: int) -> str:
        id2label = self.model.config.id2label
        return id2label[index] if id2label else f"LABEL_{index}"

    def tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self.tokenizer.backend_tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    def gather_pre_entities(self, sentence: str, feature: Feature, scores: np.ndarray, strategy: str) -> list[dict[str, Any]]:
        """One record per non-special token: its word, scores, character span and whether it continues a word."""
        ids = feature.inputs["input_ids"]
        offsets, special = feature.meta["offsets"], feature.meta["special"]
        word_aware = getattr(self.tokenizer.backend_tokenizer.model, "continuing_subword_prefix", None)
        unk = self.tokenizer.unk_token_id
        if not word_aware and strategy in _WORD_STRATEGIES and not getattr(self, "_warned_words", False):
            logger.warning("%s: the tokenizer does not mark word pieces; words are found by the fallback heuristic "
                           "(a token not preceded by a space starts no new word)", self.task)
            self._warned_words = True
        pre = []
        for idx, token_scores in enumerate(scores):
            if special[idx]:
                continue
            word = self.tokenizer.convert_ids_to_tokens(int(ids[idx]))
            start, end = offsets[idx]
            word_ref = sentence[start:end]
            if word_aware:
                is_subword = len(word) != len(word_ref)
            else:
                is_subword = start > 0 and " " not in sentence[start - 1:start + 1]
            if int(ids[idx]) == unk:
                word, is_subword = word_ref, False
            pre.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": idx, "is_subword": is_subword})
        return pre

    def aggregate(self, pre: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                best = int(p["scores"].argmax())
                entities.append({"entity": self.label(best), "score": float(p["scores"][best]), "index": p["index"],
                                 "word": p["word"], "start": p["start"], "end": p["end"]})
        else:
            entities = self.aggregate_words(pre, strategy)
        return entities if strategy == "none" else self.group_entities(entities)

    def aggregate_word(self, tokens: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
        word = self.tokens_to_string([t["word"] for t in tokens])
        if strategy == "first":
            scores = tokens[0]["scores"]
        elif strategy == "max":
            scores = max(tokens, key=lambda t: t["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([t["scores"] for t in tokens]), axis=0)
        best = int(scores.argmax())
        return {"entity": self.label(best), "score": float(scores[best]), "word": word,
                "start": tokens[0]["start"], "end": tokens[-1]["end"]}

    def aggregate_words(self, pre: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        """Fuse word pieces so every word gets one label (micro|soft| -> microsoft|)."""
        words: list[dict[str, Any]] = []
        group: list[dict[str, Any]] = []
        for token in pre:
            if group and not token["is_subword"]:
                words.append(self.aggregate_word(group, strategy))
                group = []
            group.append(token)
        if group:
            words.append(self.aggregate_word(group, strategy))
        return words

    def group_sub_entities(self, entities: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": float(np.mean(np.nanmean([e["score"] for e in entities]))),
            "word": self.tokens_to_string([e["word"] for e in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def group_entities(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Group adjacent tokens (or words) of one tag; a B- tag always starts a new group."""
        groups: list[dict[str, Any]] = []
        current: list[dict[str, Any]] = []
        for entity in entities:
            if current:
                bi, tag = split_tag(entity["entity"])
                _, last_tag = split_tag(current[-1]["entity"])
                if tag != last_tag or bi == "B":
                    groups.append(self.group_sub_entities(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self.group_sub_entities(current))
        return groups


def split_tag(name: str) -> tuple[str, str]:
    """("B"|"I", tag) of a label; a label without a B-/I- prefix continues (I) its tag."""
    if name.startswith("B-"):
        return "B", name[2:]
    if name.startswith("I-"):
        return "I", name[2:]
    return "I", name


def aggregate_overlapping_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities of overlapping windows: where two overlap keep the longer, then the more confident one."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda e: e["start"])
    kept = []
    previous = entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            kept.append(previous)
            previous = entity
    kept.append(previous)
    return kept
