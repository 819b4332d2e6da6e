"""Pipelines are pluggable: a plugin registered at test time adds a task that zoo.pipeline and `zoo run` find,
and `zoo run` reads inputs from arguments, a file or stdin and writes JSON lines."""

from __future__ import annotations

import io
import json
import logging
import types
from typing import Any

import pytest

import zoo
from zoo.cli import main
from zoo.pipelines import Feature, Pipeline
from zoo.registry import PipelineTask, hookimpl
from tests.pipelines.conftest import labels_config, make_checkpoint


class TokenNormsPipeline(Pipeline):
    """A third-party task: the L2 norm of each token's hidden state, with the tokens."""

    task = "token-norms"
    model_task = "base"

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        out = {"digits": int(options.pop("digits"))} if "digits" in options else {}
        if options:
            raise zoo.errors.PipelineError(f"token-norms got unknown options {sorted(options)}")
        return out

    def preprocess(self, item: Any, options: dict[str, Any]) -> list[Feature]:
        enc = self.encode_texts([self.check_text(item)])
        return [self.features_of(enc, 0, tokens=enc.tokens(0))]

    def forward(self, batch: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return {"norms": self.model(**batch).last_hidden_state.norm(dim=-1)}

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict[str, Any]], options: dict[str, Any]) -> Any:
        norms = outputs[0]["norms"][: features[0].length].tolist()
        return [{"token": t, "norm": round(n, options.get("digits", 6))} for t, n in zip(features[0].meta["tokens"], norms)]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin-encoder")
    make_checkpoint(folder, "base", seed=2)
    return folder


@pytest.fixture
def plugin(isolated_registry, encoder):
    module = types.ModuleType("zoo_token_norms")

    @hookimpl
    def register_pipelines(register):
        register(PipelineTask("token-norms", TokenNormsPipeline, aliases=("norms",), default_model=str(encoder)))

    module.register_pipelines = register_pipelines
    record = isolated_registry.register_plugin(module, name="zoo-token-norms")
    assert record.error is None, record.error
    return record


def test_a_plugin_task_is_found_by_zoo_pipeline(plugin, encoder):
    norms = zoo.pipeline("token-norms", model=str(encoder))
    out = norms(["hello world", "i love python"])
    assert [t["token"] for t in out[0]] == ["[CLS]", "hello", "world", "[SEP]"]
    assert all(t["norm"] > 0 for row in out for t in row)
    assert zoo.pipeline("norms", model=str(encoder))("hello world", digits=3) == [dict(t, norm=round(t["norm"], 3)) for t in out[0]]


def test_a_plugin_task_default_model_is_used_and_announced(plugin, caplog):
    with caplog.at_level(logging.WARNING):
        assert zoo.pipeline("token-norms")("hello")[1]["token"] == "hello"
    assert "using its default" in caplog.text


def test_zoo_run_finds_the_plugin_task(plugin, encoder, capsys):
    assert main(["run", "token-norms", "--model", str(encoder), "hello world", "a", "-o", "digits=2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert [t["token"] for t in first] == ["[CLS]", "hello", "world", "[SEP]"]
    assert all(t["norm"] == round(t["norm"], 2) for t in first)


def test_zoo_plugins_lists_the_task(plugin, capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["zoo-token-norms"]["tasks"] == ["token-norms"]


# --- zoo run with the built-in tasks --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run-classifier")
    make_checkpoint(folder, "sequence-classification", seed=3, **labels_config(["NEGATIVE", "POSITIVE"]))
    return folder


def test_zoo_run_reads_stdin_and_files_and_writes_json_lines_in_order(classifier, tmp_path, capsys, monkeypatch):
    texts = ["i love python", "hate bugs", "hello world " * 5]
    expected = zoo.pipeline("sentiment-analysis", model=str(classifier))(texts)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts) + "\n\n"))  # a blank line gives null
    assert main(["run", "sentiment-analysis", "--model", str(classifier), "--batch-size", "2"]) == 0
    from_stdin = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert from_stdin.pop() is None
    (tmp_path / "inputs.txt").write_text("\n".join(texts), encoding="utf-8")
    assert main(["run", "text-classification", "--model", str(classifier), "--file", str(tmp_path / "inputs.txt"),
                 "--device", "cpu", "--no-progress"]) == 0
    from_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for got in (from_stdin, from_file):
        assert [r["label"] for r in got] == [r["label"] for r in expected]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-5)


def test_zoo_run_writes_tensors_as_lists_and_reads_json_objects(classifier, capsys):
    assert main(["run", "feature-extraction", "--model", str(classifier), "hello world", "-o", "pooling=mean"]) == 0
    vector = json.loads(capsys.readouterr().out)
    assert isinstance(vector, list) and len(vector) == 32 and all(isinstance(x, float) for x in vector)
    assert main(["run", "text-classification", "--model", str(classifier), '{"text": "hello", "text_pair": "world"}']) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("NEGATIVE", "POSITIVE")


@pytest.mark.parametrize("argv, message", [
    (["run", "no-such-task", "x"], "pipeline task 'no-such-task' is not registered"),
    (["run", "text-classification", "--model", "{model}", "-o", "top_k"], "--option takes key=value"),
    (["run", "text-classification", "--model", "{model}", '{"text": ""}'], "empty string"),
    (["run", "text-classification", "--model", "{model}", "--file", "/no/such/file"], "cannot read inputs"),
])
def test_zoo_run_errors_are_one_line(classifier, capsys, argv, message):
    argv = [a.replace("{model}", str(classifier)) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and message in err


# --- preprocess or preprocess_batch, as docs/pipelines.md and docs/plugins.md say ------------------------------------------


class BatchOnlyNormsPipeline(TokenNormsPipeline):
    """The same task written with preprocess_batch only (one tokenizer call per chunk), as the docs allow."""

    preprocess = Pipeline.preprocess  # back to the base's: this class implements preprocess_batch alone

    def preprocess_batch(self, items: list[Any], options: dict[str, Any]) -> list[list[Feature]]:
        enc = self.encode_texts([self.check_text(item) for item in items])
        return [[self.features_of(enc, row, tokens=enc.tokens(row))] for row in range(len(items))]


def test_a_pipeline_with_only_preprocess_batch_runs(encoder):
    model, tokenizer = TokenNormsPipeline.load_parts(str(encoder))
    assert BatchOnlyNormsPipeline.preprocess is Pipeline.preprocess
    batch_only = BatchOnlyNormsPipeline(model, tokenizer)
    per_item = TokenNormsPipeline(model, tokenizer)
    texts = ["hello world", "i love python", "a"]
    assert batch_only(texts) == per_item(texts)
    assert batch_only("hello world") == per_item("hello world")  # one input goes through preprocess -> batch


def test_a_pipeline_with_neither_preprocess_is_refused_by_name(encoder):
    class NoPreprocess(Pipeline):
        task = "nothing"

        def postprocess(self, item, features, outputs, options):
            return None

    model, tokenizer = TokenNormsPipeline.load_parts(str(encoder))
    with pytest.raises(zoo.errors.PluginError, match=r"NoPreprocess \(task 'nothing'\) implements neither "
                                                      r"preprocess\(item, options\) nor preprocess_batch"):
        NoPreprocess(model, tokenizer)
