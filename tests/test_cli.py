"""The zoo command: the main job (similarity) on the embedded checkpoint, plugins listing, error handling."""

from __future__ import annotations

import json

import pytest

from zoo.cli import main


def test_similarity_ranks_by_meaning(minilm, capsys):
    assert main(["similarity", "--model", str(minilm), "--json", "--top-k", "2", "-q", "A man is eating pasta.",
                 "A man is eating food.", "A monkey is playing drums.", "The girl is carrying a baby."]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["matches"][0]["sentence"] == "A man is eating food."
    assert row["matches"][0]["score"] > row["matches"][1]["score"]


def test_similarity_scores_equal_transformers_mean_pooling(minilm):
    import torch
    import transformers

    from zoo.embedding import SentenceEmbedder

    sentences = ["A man is eating food.", "Short.", "A much longer sentence with many more words in it, to pad."]
    ours = SentenceEmbedder(str(minilm)).encode(sentences)
    tok = transformers.AutoTokenizer.from_pretrained(minilm)
    model = transformers.AutoModel.from_pretrained(minilm).eval()
    batch = tok(sentences, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    theirs = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_plugins_lists_builtin_bert(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    bert = next(r for r in rows if r["name"] == "zoo.plugins.bert")
    assert "masked-lm" in bert["architectures"]["bert"] and bert["hooks"] == ["register_architectures"]
    assert {"BertTokenizer", "BertForSequenceClassification", "BertConfig"} <= set(bert["exports"])
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "bert:" in out and "exports: BertConfig, BertForMaskedLM" in out


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["similarity", "--model", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:") and "does not exist" in err and "Traceback" not in err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "similarity" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["similarity", "--help"]])
def test_help(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0


# --- one rule for what a failure looks like (zoo.cli.main) -------------------------------------------------------------

import argparse
import os
import signal
import subprocess
import sys
import time

ZOO = [sys.executable, "-m", "zoo.cli"]  # the zoo on sys.path (the tree under test), not an installed script


def _zoo(*argv, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([*ZOO, *argv], stderr=subprocess.PIPE, text=True, timeout=120, **kwargs)


def test_stdout_closed_by_its_reader_ends_quietly_with_141():
    read, write = os.pipe()
    proc = subprocess.Popen([*ZOO, "plugins", "--json"], stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    os.close(read)  # the reader is gone before zoo writes a byte
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


def test_zoo_run_piped_into_head_ends_quietly(minilm, tmp_path):
    # Output far larger than a pipe's buffer, so zoo is still writing when head leaves.
    (tmp_path / "in.txt").write_text("a sentence to embed, token by token\n" * 40, encoding="utf-8")
    cmd = " ".join([*ZOO, "run", "feature-extraction", "--model", str(minilm), "--file", str(tmp_path / "in.txt"),
                    "--batch-size", "4"])
    proc = subprocess.run(["bash", "-c", f"{cmd} 2>{tmp_path / 'err'} | head -c 10; s=${{PIPESTATUS[0]}}; echo; echo $s"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines()[-1] == "141"
    err = (tmp_path / "err").read_text()
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


def test_ctrl_c_is_one_line_and_130(minilm):
    # SIGINT back to its default in the child: a shell without job control starts background jobs with it ignored,
    # and Python only turns SIGINT into KeyboardInterrupt when it was not ignored at start.
    proc = subprocess.Popen([*ZOO, "run", "feature-extraction", "--model", str(minilm), "-o", "pooling=mean",
                             "--batch-size", "8"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # More than one read-ahead window (8 x 16 inputs) and no end: once the first result is out, zoo is running
        # and then waits on stdin for the rest of the second window.
        proc.stdin.write("hello world\n" * 200)
        proc.stdin.flush()
        assert proc.stdout.readline().startswith("[")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == 130
    finally:
        proc.kill()
    assert err == "zoo: interrupted\n"


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback():
    with open("/dev/full", "w") as full:  # every write: OSError ENOSPC, not a zoo error
        proc = _zoo("plugins", "--json", stdout=full)
    assert proc.returncode == 1
    assert proc.stderr == ("zoo: error: zoo plugins failed: OSError: [Errno 28] No space left on device "
                           "(rerun with --debug or ZOO_DEBUG=1 for the traceback)\n")
    with open("/dev/full", "w") as full:
        debug = _zoo("--debug", "plugins", "--json", stdout=full)
    with open("/dev/full", "w") as full:
        env = _zoo("plugins", "--json", stdout=full, env={**os.environ, "ZOO_DEBUG": "1"})
    for proc in (debug, env):
        assert proc.returncode == 1
        assert proc.stderr.startswith("Traceback (most recent call last):") and "OSError: [Errno 28]" in proc.stderr
        assert proc.stderr.endswith("zoo: error: zoo plugins failed: OSError: [Errno 28] No space left on device\n")


def test_unexpected_errors_in_process_too(monkeypatch, capsys):
    import zoo.cli

    def boom(args):
        raise RuntimeError("the frobnicator\nbroke")

    monkeypatch.setattr(zoo.cli, "_plugins", boom)
    assert main(["plugins"]) == 1
    assert capsys.readouterr().err == ("zoo: error: zoo plugins failed: RuntimeError: the frobnicator (rerun with "
                                       "--debug or ZOO_DEBUG=1 for the traceback)\n")


# --- the command as a person uses it --------------------------------------------------------------------------------------

def test_version(capsys):
    from zoo import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"zoo (zoo-hub) {__version__}\n"


HUB_VERBS = ("download", "cache")  # zoo/hub/cli.py's, tested with the hub


def _walk(parser, path=("zoo",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if len(path) == 1 and name in HUB_VERBS:
                    continue
                yield from _walk(child, (*path, name))


def test_every_option_and_argument_of_every_verb_has_help():
    from zoo.cli import build_parser

    seen, missing = set(), []
    for path, parser in _walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            seen.add(" ".join((*path, name)))
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(" ".join((*path, name)))
    assert {"zoo run --batch-size", "zoo similarity --batch-size", "zoo plugins --json", "zoo --version"} <= seen
    assert missing == []


def test_run_help_lists_every_registered_task_from_the_registry(isolated_registry, capsys):
    import types

    from zoo.registry import PipelineTask, hookimpl

    plugin = types.ModuleType("zoo_keywords")
    plugin.register_pipelines = hookimpl(lambda register: register(
        PipelineTask("keyword-extraction", "zoo.pipelines.base:Pipeline", aliases=("keywords",))))
    assert isolated_registry.register_plugin(plugin, name="zoo-keywords").error is None
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for task in isolated_registry.tasks():
        assert task in text
    assert "image-classification" in text and "keyword-extraction (keywords)" in text and "ner" in text


def test_run_without_a_task_says_what_it_needs(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "arguments are required" not in err
    assert ("zoo run: error: a TASK is needed, then inputs as arguments, with --file, or on stdin: "
            "`zoo run TASK [INPUT ...]`; tasks: text-classification (sentiment-analysis)") in err


@pytest.mark.parametrize("argv, expected", [
    (["run", "feature-extraction", "--model", "{minilm}", "--batch-size", "0", "x"],
     "zoo: error: --batch-size must be at least 1 (an int), got 0\n"),
    (["run", "feature-extraction", "--model", "{minilm}", "--device", "cuda:7", "x"], "use --device cpu"),
])
def test_errors_speak_in_cli_options(minilm, capsys, argv, expected):
    import torch

    if "--device" in argv and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    assert main([a.replace("{minilm}", str(minilm)) for a in argv]) == 1
    err = capsys.readouterr().err
    assert expected in err and "device=" not in err and "batch_size" not in err


def test_in_cli_terms_rewrites_the_verbs_own_keywords():
    from zoo.cli import build_parser, in_cli_terms

    run = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    assert (in_cli_terms("task 'x' has no default model; pass model= (a folder or Hub repo id)", run)
            == "task 'x' has no default model; pass --model (a folder or Hub repo id)")
    assert in_cli_terms("use device='cpu' or device=\"auto\"", run) == "use --device cpu or --device auto"
    assert in_cli_terms("batch_size must be at least 1", run) == "--batch-size must be at least 1"
    # not a keyword of this verb, or part of a longer name: left alone
    assert in_cli_terms("top_k=3; the model is big; sub_model=x; config.model=y", run) == \
        "top_k=3; the model is big; sub_model=x; config.model=y"


# --- zoo run: one output line per input line, progress on a terminal ----------------------------------------------------

BLANKY = "first line\n\nsecond line\n   \nthird line\n\n"  # blank and whitespace-only lines, a trailing blank


def _check_lines_up(out: str) -> None:
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6  # six input lines, six output lines
    assert [row is None for row in rows] == [False, True, False, True, False, True]
    assert all(isinstance(row, list) and len(row) == 384 for row in rows if row is not None)


def test_blank_lines_of_a_file_give_null_lines(minilm, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(BLANKY, encoding="utf-8")
    assert main(["run", "feature-extraction", "--model", str(minilm), "-o", "pooling=mean", "--file",
                 str(tmp_path / "in.txt"), "--batch-size", "2"]) == 0
    _check_lines_up(capsys.readouterr().out)


def test_blank_lines_of_stdin_and_arguments_give_null_lines(minilm, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(BLANKY))
    assert main(["run", "feature-extraction", "--model", str(minilm), "-o", "pooling=mean"]) == 0
    _check_lines_up(capsys.readouterr().out)
    assert main(["run", "feature-extraction", "--model", str(minilm), "-o", "pooling=mean", *BLANKY.split("\n")[:-1]]) == 0
    _check_lines_up(capsys.readouterr().out)


def test_only_blank_lines(minilm, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n"))
    assert main(["run", "feature-extraction", "--model", str(minilm)]) == 0
    assert capsys.readouterr().out == "null\nnull\n"


# The bar waits STREAM_PROGRESS_DELAY_S (a few seconds) before it shows; the child sets it to 0 so the test is quick.
_NO_DELAY = ("import sys, zoo.pipelines.base as base; base.STREAM_PROGRESS_DELAY_S = 0.0; from zoo.cli import main; "
             "sys.exit(main(sys.argv[1:]))")


def _run_with_stderr_on_a_terminal(argv: list[str]) -> tuple[int, str]:
    import pty

    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    # A fresh pty is 0 x 0, and tqdm fits its bar to that: give it a terminal's 24 x 80.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", _NO_DELAY, *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=120), seen.decode(errors="replace")


def test_zoo_run_over_a_file_shows_a_bar_with_its_count_on_a_terminal(minilm, tmp_path):
    (tmp_path / "in.txt").write_text("a sentence\n\n" * 20, encoding="utf-8")  # 20 inputs, 20 blank lines
    argv = ["run", "feature-extraction", "--model", str(minilm), "-o", "pooling=mean", "--file", str(tmp_path / "in.txt")]
    status, terminal = _run_with_stderr_on_a_terminal(argv)
    assert status == 0 and "feature-extraction:" in terminal and "/20 [" in terminal  # the lines were counted
    status, terminal = _run_with_stderr_on_a_terminal([*argv, "--no-progress"])
    assert status == 0 and "feature-extraction:" not in terminal


def test_zoo_run_shows_no_bar_when_stderr_is_not_a_terminal(minilm, tmp_path):
    (tmp_path / "in.txt").write_text("a sentence\n" * 20, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", _NO_DELAY, "run", "feature-extraction", "--model", str(minilm),
                           "-o", "pooling=mean", "--file", str(tmp_path / "in.txt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "" and len(proc.stdout.splitlines()) == 20


def test_similarity_batch_size_zero_is_a_zoo_error(minilm, capsys):
    assert main(["similarity", "--model", str(minilm), "--batch-size", "0", "a", "b"]) == 1
    assert capsys.readouterr().err == "zoo: error: --batch-size must be at least 1 (an int), got 0\n"


def test_results_are_strict_json_even_with_nan_scores():
    import numpy as np
    import torch

    from zoo.cli import _jsonable

    row = {"score": float("nan"), "vector": torch.tensor([1.0, float("inf"), -2.0]), "n": np.float32("-inf"),
           "label": "x"}
    line = json.dumps(_jsonable(row), allow_nan=False)  # allow_nan=False raises on a bare NaN / Infinity
    assert json.loads(line) == {"score": None, "vector": [1.0, None, -2.0], "n": None, "label": "x"}


# --- --dtype: the precision the model runs in ---------------------------------------------------------------------------

def test_similarity_dtype_bf16_runs_the_embedder_in_bf16(minilm, monkeypatch, capsys):
    import torch

    import zoo.embedding

    built = []

    class Recording(zoo.embedding.SentenceEmbedder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self.model.dtype)

    monkeypatch.setattr(zoo.embedding, "SentenceEmbedder", Recording)
    argv = ["similarity", "--model", str(minilm), "--json", "--top-k", "3", "-q", "A man is eating pasta.",
            "A man is eating food.", "A monkey is playing drums.", "The girl is carrying a baby."]
    assert main(argv) == 0
    fp32 = json.loads(capsys.readouterr().out)
    assert main([*argv, "--dtype", "BF16"]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert built == [torch.float32, torch.bfloat16]
    assert [m["sentence"] for m in bf16["matches"]] == [m["sentence"] for m in fp32["matches"]]
    for ours, reference in zip(bf16["matches"], fp32["matches"]):
        assert abs(ours["score"] - reference["score"]) < 0.01


def test_run_dtype_bf16_gives_float32_vectors_close_to_fp32(minilm, capsys):
    import torch

    argv = ["run", "feature-extraction", "--model", str(minilm), "-o", "pooling=mean", "-o", "normalize=true",
            "A man is eating food.", "Someone is playing an instrument."]
    assert main(argv) == 0
    fp32 = torch.tensor([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    assert main([*argv, "--dtype", "bf16"]) == 0
    bf16 = torch.tensor([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    assert bf16.shape == fp32.shape == (2, 384) and not torch.equal(bf16, fp32)  # the model did run in bf16
    assert torch.nn.functional.cosine_similarity(bf16, fp32).min() > 0.999


@pytest.mark.parametrize("verb", [["similarity", "a", "b"], ["run", "feature-extraction", "x"]])
def test_a_bad_dtype_exits_2_naming_the_choices(verb, capsys):
    with pytest.raises(SystemExit) as info:
        main([*verb, "--dtype", "fp8"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"zoo {verb[0]}: error: argument --dtype: invalid choice: 'fp8'" in err
    assert all(f"'{name}'" in err for name in ("auto", "bf16", "fp16", "fp32", "bfloat16"))


@pytest.mark.parametrize("verb", [["similarity", "-q", "A man is eating pasta.", "A man is eating food.",
                                   "A monkey is playing drums."],
                                  ["run", "feature-extraction", "-o", "pooling=mean", "A man is eating food."]])
def test_quantization_int8_loads_int8_projections(minilm, verb, monkeypatch, capsys):
    import zoo.quantization

    seen = []
    original = zoo.quantization.quantize_int8

    def recording(model):
        seen.append(type(model).__name__)
        return original(model)

    monkeypatch.setattr(zoo.quantization, "quantize_int8", recording)
    assert main([verb[0], "--model", str(minilm), "--quantization", "int8", *verb[1:]]) == 0
    assert seen and capsys.readouterr().out.strip()
    with pytest.raises(SystemExit) as info:
        main([verb[0], "--quantization", "int4", *verb[1:]])
    assert info.value.code == 2 and "invalid choice: 'int4'" in capsys.readouterr().err
