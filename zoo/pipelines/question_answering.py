"""question-answering: extractive answers, as character spans of the context, for contexts of any length.

transformers 5 removed its question-answering pipeline, so zoo keeps the classic SQuAD decoding here (after
transformers 4's pipelines/question_answering.py and the SQuAD v2 scripts). The question and context are tokenised
together; a context longer than ``max_seq_len`` is cut into overlapping windows (``doc_stride`` tokens shared by
neighbours), so an answer near a window's edge is whole in the next one. In each window the start and end logits
are softmaxed over the context tokens and the CLS token, every span with ``start <= end`` and at most
``max_answer_len`` tokens is scored ``p_start * p_end``, and the best spans of all windows are ranked together.
With ``handle_impossible_answer`` the CLS score (the model's "no answer", lowest over the windows) competes as
``{"answer": "", "start": 0, "end": 0}``. Spans are widened to whole words (``align_to_words``) and returned as
``{"score", "start", "end", "answer"}`` with character offsets into the original context.

Defaults are the classic ones: doc_stride=128, max_answer_len=15, max_seq_len=384, max_question_len=64.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from zoo.errors import PipelineError
from zoo.pipelines.base import Feature, Pipeline

logger = logging.getLogger(__name__)

DEFAULTS = {"top_k": 1, "doc_stride": 128, "max_answer_len": 15, "max_seq_len": 384, "max_question_len": 64,
            "handle_impossible_answer": False, "align_to_words": True}
_POSITIVE = ("top_k", "doc_stride", "max_answer_len", "max_seq_len", "max_question_len")


class QuestionAnsweringPipeline(Pipeline):
    task = "question-answering"
    model_task = "question-answering"
    default_batch_size = 8

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        if "topk" in options:  # transformers' old name
            options["top_k"] = options.pop("topk")
        out: dict[str, Any] = {}
        for name in _POSITIVE:
            if name in options:
                value = options.pop(name)
                if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "doc_stride" else 1):
                    raise PipelineError(f"{name} must be a positive int, got {value!r}")
                out[name] = value
        for name in ("handle_impossible_answer", "align_to_words"):
            if name in options:
                out[name] = bool(options.pop(name))
        if options:
            raise PipelineError(f"{self.task} got unknown options {sorted(options)} (it takes {', '.join(DEFAULTS)})")
        return out

    # --- inputs ------------------------------------------------------------------------------------------------------

    def is_single(self, inputs: Any) -> bool:
        return isinstance(inputs, dict) or isinstance(inputs, tuple) and len(inputs) == 2 and all(isinstance(x, str) for x in inputs)

    def __call__(self, inputs: Any = None, *, question: Any = None, context: Any = None, **kwargs: Any) -> Any:
        """``qa(question=..., context=...)``, ``qa({"question": ..., "context": ...})`` or a list of such dicts.

        ``question``/``context`` may also be lists (paired one to one), or a list beside a single string (which is
        then shared by every pair).
        """
        if question is not None or context is not None:
            if inputs is not None:
                raise PipelineError(f"{self.task}: pass the inputs either positionally or as question=/context=, not both")
            inputs = self.pair_up(question, context)
        elif inputs is None:
            raise PipelineError(f"{self.task} needs a question and a context: qa(question='...', context='...')")
        return super().__call__(inputs, **kwargs)

    def pair_up(self, question: Any, context: Any) -> Any:
        if question is None:
            raise PipelineError(f"{self.task}: a context was given without a question; pass question='...'")
        if context is None:
            raise PipelineError(f"{self.task}: a question was given without a context; pass context='...' "
                                f"(the text that holds the answer)")
        q_list, c_list = isinstance(question, (list, tuple)), isinstance(context, (list, tuple))
        if not q_list and not c_list:
            return {"question": question, "context": context}
        questions = list(question) if q_list else [question] * len(context)
        contexts = list(context) if c_list else [context] * len(question)
        if len(questions) != len(contexts):
            raise PipelineError(f"{self.task}: got {len(questions)} questions but {len(contexts)} contexts; "
                                f"pass one context per question, or a single context for all")
        return [{"question": q, "context": c} for q, c in zip(questions, contexts)]

    def split_input(self, item: Any) -> tuple[str, str]:
        if isinstance(item, tuple) and len(item) == 2:
            item = {"question": item[0], "context": item[1]}
        if not isinstance(item, dict):
            raise PipelineError(f"{self.task}: each input must be a {{'question': ..., 'context': ...}} dict, "
                                f"got {type(item).__name__}")
        if item.get("context") is None:
            raise PipelineError(f"{self.task}: a question was given without a context; add a 'context' "
                                f"(the text that holds the answer)")
        if item.get("question") is None:
            raise PipelineError(f"{self.task}: a context was given without a question; add a 'question'")
        return self.check_text(item["question"], "question"), self.check_text(item["context"], "context")

    # --- features ----------------------------------------------------------------------------------------------------

    @property
    def question_first(self) -> bool:
        # a tokenizer that pads on the left puts the context first, as transformers' pipeline did
        return self.tokenizer.padding_side == "right"

    def _pair_specials(self) -> int:
        if not hasattr(self, "_n_specials"):
            plain = len(self.tokenizer("a b", add_special_tokens=False)["input_ids"]) * 2
            self._n_specials = len(self.tokenizer("a b", "a b")["input_ids"]) - plain
        return self._n_specials

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        opts = {**DEFAULTS, **options}
        question, context = self.split_input(item)
        max_seq_len = min(opts["max_seq_len"], self.max_input_length)
        q_enc = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        if len(q_enc["input_ids"]) > opts["max_question_len"]:
            cut = q_enc["offset_mapping"][opts["max_question_len"] - 1][1]
            logger.warning("%s: the question has %d tokens; it was cut to max_question_len=%d (%r)", self.task,
                           len(q_enc["input_ids"]), opts["max_question_len"], question[:cut])
            question = question[:cut]
            n_question = opts["max_question_len"]
        else:
            n_question = len(q_enc["input_ids"])
        room = max_seq_len - n_question - self._pair_specials()  # context tokens per window
        if room < 2:
            raise PipelineError(f"{self.task}: the question takes {n_question} tokens, leaving no room for the context "
                                f"in max_seq_len={max_seq_len}; use a shorter question or a smaller max_question_len")
        # neighbouring windows share `stride` tokens; it must be shorter than a window's context part
        stride = min(opts["doc_stride"], max_seq_len // 2, room - 1)
        first, second = (question, context) if self.question_first else (context, question)
        enc = self.tokenizer(first, second, truncation="only_second" if self.question_first else "only_first",
                             max_length=max_seq_len, stride=stride, return_overflowing_tokens=True,
                             return_offsets_mapping=True)
        context_index = 1 if self.question_first else 0
        cls_id = self.tokenizer.cls_token_id
        features = []
        for row, encoding in enumerate(enc.encodings):
            ids = enc["input_ids"][row]
            in_context = np.array([s == context_index for s in encoding.sequence_ids], dtype=bool)
            cls = next((i for i, t in enumerate(ids) if t == cls_id), None) if cls_id is not None else None
            features.append(self.features_of(enc, row, encoding=encoding, in_context=in_context, cls=cls,
                                             context_index=context_index))
        return features

    def forward(self, batch: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        out = self.model(**batch, return_dict=True)
        return {"start": out.start_logits, "end": out.end_logits}

    # --- decoding ----------------------------------------------------------------------------------------------------

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        opts = {**DEFAULTS, **options}
        _, context = self.split_input(item)
        null_score = float("inf")
        best: dict[tuple[int, int], float] = {}
        for feature, output in zip(features, outputs):
            n = feature.length
            spans, window_null = decode_window(output["start"][:n].numpy(), output["end"][:n].numpy(),
                                               feature.meta["in_context"], feature.meta["cls"], opts["top_k"],
                                               opts["max_answer_len"])
            if window_null is not None:
                null_score = min(null_score, window_null)
            for s, e, score in spans:
                chars = self.char_span(feature, s, e, opts["align_to_words"])
                if score > best.get(chars, -1.0):
                    best[chars] = score  # the same span seen in two overlapping windows counts once
        answers = [{"score": score, "start": s, "end": e, "answer": context[s:e]} for (s, e), score in best.items()]
        if opts["handle_impossible_answer"] and null_score != float("inf"):
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[: opts["top_k"]]
        if opts["top_k"] == 1:
            return answers[0] if answers else {"score": 0.0, "start": 0, "end": 0, "answer": ""}
        return answers

    def char_span(self, feature: Feature, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
        """Character offsets in the context of tokens s..e, widened to whole words when asked."""
        encoding = feature.meta["encoding"]
        if align_to_words:
            start_word, end_word = encoding.token_to_word(s), encoding.token_to_word(e)
            index = feature.meta["context_index"]
            if start_word is not None and end_word is not None:
                start_chars = encoding.word_to_chars(start_word, index)
                end_chars = encoding.word_to_chars(end_word, index)
                if start_chars is not None and end_chars is not None:
                    return start_chars[0], end_chars[1]
        return encoding.offsets[s][0], encoding.offsets[e][1]


def decode_window(start_logits: np.ndarray, end_logits: np.ndarray, in_context: np.ndarray, cls: int | None,
                  top_k: int, max_answer_len: int) -> tuple[list[tuple[int, int, float]], float | None]:
    """The ``top_k`` best (start, end, score) spans of one window, and its no-answer (CLS) score.

    Probabilities are a softmax over the context tokens and CLS; a span scores ``p_start[s] * p_end[e]`` for
    context tokens ``s <= e < s + max_answer_len``.
    """
    allowed = in_context.copy()
    if cls is not None:
        allowed[cls] = True
    start = _softmax(np.where(allowed, start_logits, -10000.0))
    end = _softmax(np.where(allowed, end_logits, -10000.0))
    null = float(start[cls] * end[cls]) if cls is not None else None
    n = len(start)
    valid = np.tril(np.triu(np.ones((n, n), dtype=bool)), max_answer_len - 1)  # s <= e < s + max_answer_len
    valid &= in_context[:, None] & in_context[None, :]
    scores = np.where(valid, np.outer(start, end), -1.0)  # (T, T): score of span (s, e)
    flat = scores.ravel()
    count = min(top_k, int((flat >= 0).sum()))
    if count == 0:
        return [], null
    # the best `count` scores; among equal ones the earliest spans, so that top_k=2 is the head of top_k=4
    # (argpartition alone picks an arbitrary one of scores tied at the cut)
    kth = -np.partition(-flat, count - 1)[count - 1]
    above = np.flatnonzero(flat > kth)
    top = np.concatenate([above, np.flatnonzero(flat == kth)[: count - above.size]])
    top = top[np.argsort(-flat[top], kind="stable")]
    return [(int(i // n), int(i % n), float(flat[i])) for i in top if flat[i] >= 0], null


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()
