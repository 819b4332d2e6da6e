"""The pipeline base: input forms, length-bucketed batches in input order, devices, dtype, progress, defaults."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest
import torch

import zoo
from zoo.errors import DeviceError, OfflineModeError, PipelineError
from zoo.pipelines import resolve_device
from tests.pipelines.conftest import assert_records_equal, labels_config, make_checkpoint

TEXTS = [("hello world " * n).strip() for n in (1, 9, 3, 14, 2, 7, 1, 11, 5, 4, 13, 6)]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base-classifier")
    make_checkpoint(folder, "sequence-classification", seed=1, **labels_config(["NEGATIVE", "POSITIVE"]))
    return folder


@pytest.fixture
def clf(classifier):
    return zoo.pipeline("text-classification", model=str(classifier), top_k=None)


def test_results_come_back_in_input_order_for_every_batch_size(clf):
    expected = [clf(t) for t in TEXTS]  # one by one: no batching, no sorting
    for batch_size in (1, 2, 5, 100):
        assert_records_equal(clf(TEXTS, batch_size=batch_size), expected, atol=1e-5)


def test_batches_are_length_buckets(clf, monkeypatch):
    seen = []
    original = type(clf).run_batch

    def spy(self, features, opts):
        seen.append([f.length for f in features])
        return original(self, features, opts)

    monkeypatch.setattr(type(clf), "run_batch", spy)
    clf(TEXTS, batch_size=4)
    assert sum(map(len, seen)) == len(TEXTS) and max(map(len, seen)) <= 4
    flat = [n for b in seen for n in b]
    assert flat == sorted(flat, reverse=True)  # longest first, each batch a run of similar lengths


def test_batch_plan_cuts_where_padding_would_cost_more_than_a_forward():
    from types import SimpleNamespace

    from zoo.pipelines.base import Pipeline

    cpu, gpu = SimpleNamespace(device=torch.device("cpu")), SimpleNamespace(device=torch.device("cuda"))
    lengths = [300] + [10] * 40
    assert Pipeline.plan_batches(cpu, lengths, 32) == [(0, 1), (1, 9), (9, 41)]  # the long input goes alone
    assert Pipeline.plan_batches(gpu, lengths, 32) == [(0, 32), (32, 41)]  # accelerators: full batches
    equal = Pipeline.plan_batches(cpu, [7] * 10, 4)  # equal lengths: as few batches as the size allows
    assert len(equal) == 3 and equal[0][0] == 0 and equal[-1][1] == 10 and all(e - s <= 4 for s, e in equal)
    assert Pipeline.plan_batches(cpu, [], 4) == [] and Pipeline.plan_batches(cpu, [5], 4) == [(0, 1)]


def test_generators_give_a_lazy_iterator_and_datasets_a_list(clf):
    consumed = []

    def texts():
        for i, t in enumerate(TEXTS * 6):
            consumed.append(i)
            yield t

    stream = clf(texts(), batch_size=2)
    assert not isinstance(stream, list) and not consumed
    first = next(stream)
    assert_records_equal(first, clf(TEXTS[0]), atol=1e-5)
    assert len(consumed) < len(TEXTS) * 6  # read ahead one sorting window only
    assert len(list(stream)) == len(TEXTS) * 6 - 1

    class Dataset:
        def __len__(self):
            return len(TEXTS)

        def __getitem__(self, i):
            return TEXTS[i]

    assert_records_equal(clf(Dataset()), clf(TEXTS), atol=1e-5)
    assert_records_equal(clf(tuple(TEXTS[:2])), clf(TEXTS[:2]), atol=1e-5)
    assert clf([]) == []


def test_forward_runs_under_inference_mode(clf, monkeypatch):
    modes = []
    original = type(clf).forward

    def spy(self, batch, opts):
        modes.append(torch.is_inference_mode_enabled())
        return original(self, batch, opts)

    monkeypatch.setattr(type(clf), "forward", spy)
    clf(TEXTS[:3])
    assert modes and all(modes)


def test_progress_bar_on_long_inputs_and_off_on_request(clf, capsys):
    clf(TEXTS * 5, batch_size=2)
    assert "text-classification" in capsys.readouterr().err
    clf(TEXTS * 5, batch_size=2, progress=False)
    clf(TEXTS[:2], batch_size=2)  # one batch: no bar
    assert "text-classification" not in capsys.readouterr().err
    clf(TEXTS[:2], progress=True)
    assert "text-classification" in capsys.readouterr().err


def test_devices():
    assert resolve_device(None) == resolve_device("cpu") == resolve_device(-1) == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError, match="'tpu' is not a device name torch understands"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1", 0):
            with pytest.raises(DeviceError, match="CUDA is not available on this machine \\(available here: cpu"):
                resolve_device(name)


def test_device_and_dtype_options(classifier):
    reference = zoo.pipeline("text-classification", model=str(classifier), top_k=None)(TEXTS)
    wide = zoo.pipeline("text-classification", model=str(classifier), top_k=None, device="auto", dtype="float64")
    assert next(wide.model.parameters()).dtype == torch.float64
    for g, e in zip(wide(TEXTS), reference):
        assert [r["score"] for r in g] == pytest.approx([r["score"] for r in e], abs=1e-5)
    with pytest.raises(PipelineError, match="not a torch dtype"):
        zoo.pipeline("text-classification", model=str(classifier), dtype="float13")


def test_loaded_model_and_tokenizer_objects(classifier):
    model = zoo.AutoModelForSequenceClassification.from_pretrained(classifier)
    tokenizer = zoo.AutoTokenizer.from_pretrained(classifier)
    clf = zoo.pipeline("text-classification", model=model, tokenizer=tokenizer)
    assert clf("hello")[0]["label"] in ("NEGATIVE", "POSITIVE")
    with pytest.raises(PipelineError, match="pass its tokenizer"):
        zoo.pipeline("text-classification", model=model)


def test_batch_size_zero_is_an_error_not_the_default(classifier, clf):
    # `batch_size or default` used to turn 0 (and `--batch-size 0`) into the default in silence.
    with pytest.raises(PipelineError, match="batch_size must be at least 1 \\(an int\\), got 0"):
        zoo.pipeline("text-classification", model=str(classifier), batch_size=0)
    with pytest.raises(PipelineError, match="got 0"):
        clf(TEXTS, batch_size=0)
    with pytest.raises(PipelineError, match="got 2.5"):
        clf(TEXTS, batch_size=2.5)


class _Stderr:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_stream_progress_decision(monkeypatch):
    from zoo.pipelines import base

    monkeypatch.setattr(base, "STREAM_PROGRESS_DELAY_S", 3.0)
    assert base.stream_progress(None, _Stderr(True)) == (True, 3.0)  # a terminal: a bar, after a few seconds
    assert base.stream_progress(None, _Stderr(False)) == (False, 3.0)  # piped or logged stderr: none
    assert base.stream_progress(False, _Stderr(True))[0] is False  # --no-progress / progress=False
    assert base.stream_progress(True, _Stderr(False)) == (True, 0.0)  # progress=True: at once, anywhere
    monkeypatch.setattr("sys.stderr", _Stderr(True))
    assert base.stream_progress(None) == (True, 3.0)  # defaults to sys.stderr
    assert base.stream_progress(None, object()) == (False, 3.0)  # no isatty at all


def test_a_stream_shows_one_bar_with_the_length_hint_as_total(clf, capsys, monkeypatch):
    from zoo.pipelines import base

    class Counted:
        def __init__(self, items):
            self.items = iter(items)

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.items)

        def __length_hint__(self):
            return 12

    monkeypatch.setattr(base, "STREAM_PROGRESS_DELAY_S", 0.0)
    monkeypatch.setattr("sys.stderr", _TtyBuffer())
    assert len(list(clf(Counted(TEXTS), batch_size=2))) == 12
    bar = sys.stderr.getvalue()
    assert "text-classification" in bar and "0/12" in bar  # the total is known
    monkeypatch.setattr("sys.stderr", _TtyBuffer())
    list(clf((t for t in TEXTS), batch_size=2))  # a generator has no length: the count and the rate
    bar = sys.stderr.getvalue()
    assert "text-classification" in bar and "input/s" in bar and "/12" not in bar
    monkeypatch.setattr("sys.stderr", _TtyBuffer())
    list(clf(iter(TEXTS), batch_size=2, progress=False))
    assert sys.stderr.getvalue() == ""


class _TtyBuffer(io.StringIO):
    def isatty(self):
        return True


def test_bad_batch_size_and_unknown_task(classifier):
    with pytest.raises(PipelineError, match="batch_size must be at least 1"):
        zoo.pipeline("text-classification", model=str(classifier), batch_size=-1)
    with pytest.raises(zoo.errors.UnknownTaskError, match="registered: .*fill-mask"):
        zoo.pipeline("automatic-speech-recognition", model=str(classifier))


def test_every_builtin_task_has_a_pinned_default_model():
    tasks = zoo.get_registry().tasks()
    assert {"text-classification", "token-classification", "question-answering", "fill-mask", "feature-extraction",
            "text-generation"} <= set(tasks)
    for task in tasks.values():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", task.default_model), task


def test_default_model_is_announced_once_and_offline_says_what_to_fetch(monkeypatch, caplog):
    import zoo.pipelines

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(zoo.pipelines, "_announced", set())
    repo, sha = zoo.get_registry().task("ner").default_model.split("@")
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            with pytest.raises(OfflineModeError) as info:
                zoo.pipeline("ner")
            assert f"zoo download {repo} --revision {sha}" in str(info.value)
    assert caplog.text.count("using its default") == 1
