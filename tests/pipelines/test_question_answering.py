"""question-answering: span decoding checked against answers computed here, independently, from start/end logits.

transformers 5 has no question-answering pipeline to compare with, so each test tokenises the windows with
transformers' tokenizer, runs transformers' model on them one by one, and finds the best spans by brute force over
every (start, end) pair (softmax over the context tokens and CLS, ``p_start * p_end``, ``end - start <
max_answer_len``). Two kinds of checkpoints: random ones (many windows, many near-equal spans) and a "planted"
one whose start logit peaks on the token ``python`` and end logit on ``bugs`` (CLS on neither), built by zeroing
every layer's output projection so the hidden state of a token is its normalised embedding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import PipelineError
from tests.checkpoints import make_bert
from tests.pipelines.conftest import make_checkpoint, make_roberta

FILLER = ["the", "a", "hello", "world", "is", "of", "and", "to", "in", "love", "hate", "i"]  # one token each


@pytest.fixture(scope="module")
def random_qa(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa-random")
    make_checkpoint(folder, "question-answering", seed=3)
    return folder


@pytest.fixture(scope="module")
def planted_qa(tmp_path_factory):
    """A BERT whose answer is the span from ``python`` to ``bugs``; a CLS-like null answer otherwise."""
    folder = tmp_path_factory.mktemp("qa-planted")
    model = make_bert(folder, task="question-answering", seed=5)
    vocab = (folder / "vocab.txt").read_text().split("\n")
    hidden = model.config.hidden_size
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(hidden, generator=g), torch.randn(hidden, generator=g)
    v = v - (v @ u) / (u @ u) * u  # orthogonal to u
    u, v = [(x - x.mean()) / x.std(unbiased=False) for x in (u, v)]
    with torch.no_grad():
        emb = model.bert.embeddings
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.word_embeddings.weight.normal_(0, 0.02, generator=g)
        emb.word_embeddings.weight[vocab.index("python")] = u
        emb.word_embeddings.weight[vocab.index("bugs")] = v
        emb.word_embeddings.weight[vocab.index("[CLS]")] = 0.7 * (u + v)
        for layer in model.bert.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
        model.qa_outputs.weight.copy_(torch.stack([u, v]) * 12 / hidden)
        model.qa_outputs.bias.zero_()
    model.save_pretrained(folder)
    return folder


def expected_answers(folder, question, context, *, max_seq_len, doc_stride, max_answer_len=15, top_k=1,
                     handle_impossible_answer=False):
    """Best answers by brute force over every window's spans, from transformers' tokenizer and model."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(str(folder)).eval()
    enc = tokenizer(question, context, truncation="only_second", max_length=max_seq_len, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    best: dict[tuple[int, int], float] = {}
    null = math.inf
    for w in range(len(enc["input_ids"])):
        ids = torch.tensor([enc["input_ids"][w]])
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                        token_type_ids=torch.tensor([enc["token_type_ids"][w]]))
        context_tokens = [i for i, s in enumerate(enc.sequence_ids(w)) if s == 1]
        allowed = [0] + context_tokens  # CLS and the context

        def softmax(logits):
            top = max(float(logits[i]) for i in allowed)
            exp = {i: math.exp(float(logits[i]) - top) for i in allowed}
            total = sum(exp.values())
            return {i: e / total for i, e in exp.items()}

        p_start, p_end = softmax(out.start_logits[0]), softmax(out.end_logits[0])
        null = min(null, p_start[0] * p_end[0])
        offsets = enc["offset_mapping"][w]
        for s in context_tokens:
            for e in context_tokens:
                if s <= e < s + max_answer_len:
                    span = (offsets[s][0], offsets[e][1])
                    best[span] = max(best.get(span, 0.0), p_start[s] * p_end[e])
    answers = [{"score": sc, "start": s, "end": e, "answer": context[s:e]} for (s, e), sc in best.items()]
    if handle_impossible_answer:
        answers.append({"score": null, "start": 0, "end": 0, "answer": ""})
    answers.sort(key=lambda a: -a["score"])
    return answers[:top_k], enc


def assert_answers(got, expected):
    got = got if isinstance(got, list) else [got]
    assert [(a["start"], a["end"], a["answer"]) for a in got] == [(a["start"], a["end"], a["answer"]) for a in expected]
    for g, e in zip(got, expected):
        assert g["score"] == pytest.approx(e["score"], abs=1e-4)


def filler(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [FILLER[int(i)] for i in torch.randint(len(FILLER), (n,), generator=g)]


# --- span decoding ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 3])
def test_long_context_matches_brute_force_over_windows(random_qa, top_k):
    context = " ".join(filler(200, seed=1))  # ~3.5x the 64-token window
    qa = zoo.pipeline("question-answering", model=str(random_qa))
    expected, windows = expected_answers(random_qa, "where is the love?", context, max_seq_len=64, doc_stride=20,
                                         top_k=top_k)
    assert len(windows["input_ids"]) >= 5
    got = qa(question="where is the love?", context=context, max_seq_len=64, doc_stride=20, top_k=top_k,
             align_to_words=False)
    assert_answers(got, expected)


def test_max_answer_len_limits_spans(random_qa):
    context = " ".join(filler(90, seed=2))
    qa = zoo.pipeline("question-answering", model=str(random_qa))
    expected, _ = expected_answers(random_qa, "what?", context, max_seq_len=64, doc_stride=16, max_answer_len=3, top_k=5)
    got = qa(question="what?", context=context, doc_stride=16, max_answer_len=3, top_k=5, align_to_words=False)
    assert_answers(got, expected)
    assert all(len(a["answer"].split()) <= 3 for a in got)


def test_answer_crossing_a_window_boundary_is_found_whole(planted_qa):
    # windows of 58 context tokens sharing 32: window 1 ends at token 58, window 2 covers 26..84
    words = filler(120, seed=3)
    words[52], words[60] = "python", "bugs"
    context = " ".join(words)
    qa = zoo.pipeline("question-answering", model=str(planted_qa))
    expected, windows = expected_answers(planted_qa, "where?", context, max_seq_len=64, doc_stride=32, top_k=2)
    spans = [(min(o[0] for o, s in zip(offs, windows.sequence_ids(w)) if s == 1),
              max(o[1] for o, s in zip(offs, windows.sequence_ids(w)) if s == 1))
             for w, offs in enumerate(windows["offset_mapping"])]
    python_at, bugs_end = context.index("python"), context.index("bugs") + 4
    assert any(a <= python_at < b < bugs_end for a, b in spans)  # a window cuts the answer...
    assert any(a <= python_at and bugs_end <= b for a, b in spans)  # ...and the next one holds it whole
    got = qa(question="where?", context=context, doc_stride=32, top_k=2, align_to_words=False)
    assert_answers(got, expected)
    assert got[0]["answer"] == " ".join(words[52:61])
    assert context[got[0]["start"]:got[0]["end"]] == got[0]["answer"]


def test_unanswerable_question_gives_the_empty_answer(planted_qa):
    context = " ".join(filler(150, seed=4))  # neither python nor bugs: the CLS score wins
    qa = zoo.pipeline("question-answering", model=str(planted_qa))
    expected, _ = expected_answers(planted_qa, "where?", context, max_seq_len=64, doc_stride=32, top_k=2,
                                   handle_impossible_answer=True)
    got = qa(question="where?", context=context, handle_impossible_answer=True, top_k=2, align_to_words=False)
    assert_answers(got, expected)
    assert got[0] == {"score": pytest.approx(expected[0]["score"], abs=1e-4), "start": 0, "end": 0, "answer": ""}
    # without handle_impossible_answer the best real span is returned
    assert qa(question="where?", context=context)["answer"] != ""


def test_answerable_question_beats_the_null_answer(planted_qa):
    context = "i love python and hate bugs in the world"
    got = zoo.pipeline("question-answering", model=str(planted_qa))(
        question="what?", context=context, handle_impossible_answer=True)
    assert got["answer"] == "python and hate bugs"
    assert (got["start"], got["end"]) == (7, 27)


def test_align_to_words_widens_to_whole_words(planted_qa):
    context = "i love pythons and bugsly"  # python|##s and bugs|##ly
    qa = zoo.pipeline("question-answering", model=str(planted_qa))
    tokens_only = qa(question="what?", context=context, align_to_words=False)
    words = qa(question="what?", context=context)
    assert tokens_only["answer"] == "pythons and bugs"  # the end token "bugs" stops inside "bugsly"
    assert words["answer"] == "pythons and bugsly"
    assert (words["start"], words["end"]) == (7, 25)
    assert words["score"] == tokens_only["score"]


def test_roberta_question_answering_runs_question_first(tmp_path):
    make_roberta(tmp_path, "question-answering", seed=1)
    context = "My name is Wolfgang and I live in Berlin. " * 6
    got = zoo.pipeline("question-answering", model=str(tmp_path))(question="Where do I live?", context=context, top_k=2)
    assert len(got) == 2
    for answer in got:
        assert answer["answer"] == context[answer["start"]:answer["end"]] and answer["answer"]
        assert 0 < answer["score"] <= 1


# --- inputs and errors -------------------------------------------------------------------------------------------------


def test_input_forms_agree(random_qa):
    qa = zoo.pipeline("question-answering", model=str(random_qa))
    q, c = "who loves python?", "i love python and hello world"
    one = qa(question=q, context=c)
    assert qa({"question": q, "context": c}) == one

    def same_answer(batched):
        # in a padded batch the matmuls have other shapes, so the score may differ in its last float32 bits
        assert {k: v for k, v in batched.items() if k != "score"} == {k: v for k, v in one.items() if k != "score"}
        assert batched["score"] == pytest.approx(one["score"], rel=1e-5)

    same_answer(qa([{"question": q, "context": c}, {"question": "what?", "context": c}])[0])
    same_answer(qa(question=[q, "what?"], context=c)[0])
    same_answer(qa(question=[q, q], context=[c, "hello world"])[0])


@pytest.mark.parametrize("call, message", [
    (lambda qa: qa(question="who?"), "without a context"),
    (lambda qa: qa(context="some text"), "without a question"),
    (lambda qa: qa({"question": "who?"}), "without a context"),
    (lambda qa: qa(question="who?", context=""), "empty string"),
    (lambda qa: qa(question=None, context=None), "needs a question and a context"),
    (lambda qa: qa(question=["a", "b"], context=["x"]), "2 questions but 1 contexts"),
    (lambda qa: qa("just a string"), "must be a {'question'"),
    (lambda qa: qa(question="who?", context="text", max_answer_len=0), "max_answer_len"),
])
def test_bad_input_is_a_clear_error(random_qa, call, message):
    qa = zoo.pipeline("question-answering", model=str(random_qa))
    with pytest.raises(PipelineError, match=message):
        call(qa)


def test_a_long_question_is_cut_to_max_question_len(random_qa, caplog):
    qa = zoo.pipeline("question-answering", model=str(random_qa))
    question = " ".join(filler(80, seed=6))
    got = qa(question=question, context="i love python and hello world", max_question_len=10)
    assert got["answer"] and "max_question_len=10" in caplog.text


def test_the_classic_defaults():
    from zoo.pipelines.question_answering import DEFAULTS

    assert (DEFAULTS["doc_stride"], DEFAULTS["max_answer_len"], DEFAULTS["max_seq_len"], DEFAULTS["max_question_len"]) == (128, 15, 384, 64)


def test_tied_spans_come_earliest_first_whatever_top_k():
    """Repeated tokens give spans of exactly equal score: the earliest win, so a shorter top_k is a prefix."""
    from zoo.pipelines.question_answering import decode_window

    logits = np.array([0.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0])  # tokens 2, 4, 6 alike; token 0 is CLS
    in_context = np.array([False] + [True] * 6)
    full, _ = decode_window(logits, logits, in_context, 0, top_k=6, max_answer_len=15)
    assert [(s, e) for s, e, _ in full[:6]] == [(2, 2), (2, 4), (2, 6), (4, 4), (4, 6), (6, 6)]
    for k in range(1, 6):
        assert decode_window(logits, logits, in_context, 0, top_k=k, max_answer_len=15)[0] == full[:k]
