"""Properties of ``zoo run`` (in-process, through zoo.cli.main) over generated argv and input text: lines of every
kind (blank, whitespace-only, JSON objects and broken JSON, control characters, CR line ends, long lines), inputs
from arguments, a file or stdin, task options valid and not, batch sizes and devices valid and not.

The property: the exit status is 0, 1 or 2; stderr never holds a traceback, and every error is a zoo error or an
argument error (never "zoo run failed: <some exception>"); on success, stdout has exactly one line per input line,
each of them JSON.
"""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.checkpoints import make_bert
from tests.pipelines.conftest import labels_config, make_checkpoint
from zoo.cli import main

LINE_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")
PLAIN = st.text(LINE_CHARS, max_size=60)
LINE = st.one_of(
    PLAIN,
    st.sampled_from(["", " ", "\t", "   \t ", "{", "{bad json", "{}", '{"text": ""}', '{"text": "hello", "text_pair": "world"}',
                     '{"a": [1, 2]}', "null", "[1, 2]", "\x00\x01", "hello world " * 40, "[MASK]", "[CLS] [SEP]", "-n", "--bogus"]),
    st.builds(lambda d: json.dumps(d), st.dictionaries(st.sampled_from(["text", "text_pair", "x"]), PLAIN, max_size=2)),
)
# Mostly valid argv, so that the success path (one line per input line) is exercised as much as the errors.
OPTIONS = st.one_of(*[st.just([])] * 4, st.lists(st.sampled_from([
    "pooling=mean", "pooling=cls", "pooling=bogus", "normalize=true", "normalize=1", "truncation=false",
    "return_tensors=np", "top_k=1", "top_k=0", "top_k=null", "function_to_apply=sigmoid", "function_to_apply=x",
    "aggregation_strategy=simple", "aggregation_strategy=first", "aggregation_strategy=nope", "ignore_labels=[]",
    "unknown=1", "noequals", "=3",
]), max_size=2))
TASKS = st.sampled_from(["feature-extraction", "text-classification", "sentiment-analysis", "ner"] * 3 + ["no-such-task"])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-cli-models")
    make_bert(root / "base", "base")
    make_checkpoint(root / "sentiment", "sequence-classification", **labels_config(["NEGATIVE", "POSITIVE"]))
    make_checkpoint(root / "ner", "token-classification", **labels_config(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]))
    return {"feature-extraction": root / "base", "text-classification": root / "sentiment",
            "sentiment-analysis": root / "sentiment", "ner": root / "ner", "no-such-task": root / "base"}


def _expected_lines(source: str, lines: list[str], path) -> int:
    if source == "file":  # read as zoo reads it: universal newlines, so a lone CR in a line ends it too
        with open(path, encoding="utf-8") as f:
            return sum(1 for _ in f)
    return len(lines)


@given(task=TASKS, lines=st.lists(LINE, max_size=10), source=st.sampled_from(["args", "stdin", "file"]),
       options=OPTIONS, batch_size=st.sampled_from([None] * 4 + [1, 2, 3, 64, 0, -1]),
       device=st.sampled_from([None] * 6 + ["cpu", "auto", "tpu", "cuda:9"]), no_progress=st.booleans())
def test_zoo_run_exits_cleanly_with_one_line_per_input_line(models, tmp_path, capsys, monkeypatch, task, lines,
                                                            source, options, batch_size, device, no_progress):
    import torch

    if device == "auto" and torch.cuda.is_available():
        device = "cpu"  # the property is about the CLI, not about moving tiny models to a GPU
    argv = ["run", task, "--model", str(models[task])]
    for option in options:
        argv += ["-o", option]
    if batch_size is not None:
        argv += ["--batch-size", str(batch_size)]
    if device is not None:
        argv += ["--device", device]
    if no_progress:
        argv.append("--no-progress")
    path = tmp_path / "inputs.txt"
    if source == "args":
        argv += lines
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
    elif source == "file":
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        argv += ["--file", str(path)]
    else:
        monkeypatch.setattr("sys.stdin", io.StringIO("".join(line + "\n" for line in lines)))
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: bad arguments (an input starting with "-", --batch-size -1 ...)
        status = exc.code
    out, err = capsys.readouterr()
    event(f"exit status {status}")
    assert status in (0, 1, 2), (status, err)
    assert "Traceback" not in err and "failed:" not in err, err  # only zoo errors and argument errors
    if status == 0:
        if source == "args" and not lines:
            return  # no arguments: the inputs were stdin's (empty here)
        got = out.splitlines()
        assert len(got) == _expected_lines(source, lines, path), (lines, got)
        for line in got:
            json.loads(line)
    elif status == 1:
        assert err.startswith("zoo: error: ") and len(err.strip().splitlines()) >= 1
