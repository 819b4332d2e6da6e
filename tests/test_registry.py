"""The plugin registry: built-ins, in-process plugins, entry points, ZOO_LOAD_PLUGINS, failure isolation."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import types

import pytest

import zoo
from zoo.errors import PluginError, TaskNotSupportedError, UnknownModelTypeError
from zoo.registry import Architecture, Registry, hookimpl, resolve_import


def make_plugin(*archs, name="plugin"):
    """A plugin module whose hook registers ``archs``."""
    module = types.ModuleType(name)

    @hookimpl
    def register_architectures(register):
        for arch in archs:
            register(arch)

    module.register_architectures = register_architectures
    return module


def toy(model_type="toy", **kw):
    return Architecture(model_type=model_type, config="zoo.plugins.bert.config:BertConfig",
                        models={"base": "zoo.plugins.bert.modeling:BertModel"}, **kw)


def test_builtin_bert_is_registered_without_importing_model_code(isolated_registry):
    code = ("import sys, zoo; from zoo.registry import get_registry; arch = get_registry().architecture('bert'); "
            "print(arch.plugin, sorted(arch.tasks), 'torch' in sys.modules, 'zoo.plugins.bert.modeling' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "zoo.plugins.bert"
    assert "sequence-classification" in " ".join(out)
    assert out[-2:] == ["False", "False"]


def test_import_zoo_imports_no_torch():
    code = "import sys, zoo; zoo.AutoModel; zoo.AutoTokenizer; zoo.AutoConfig; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_in_process_plugin_registers_an_architecture(isolated_registry):
    record = isolated_registry.register_plugin(make_plugin(toy()), name="toy-plugin")
    assert record.error is None and record.architectures == ["toy"]
    assert isolated_registry.architecture("toy").plugin == "toy-plugin"
    assert record.hooks == ("register_architectures",)


def test_duplicate_model_type_names_both_plugins_and_keeps_the_first(isolated_registry, caplog):
    caplog.set_level(logging.WARNING)
    isolated_registry.register_plugin(make_plugin(toy()), name="first")
    record = isolated_registry.register_plugin(make_plugin(toy()), name="second")
    assert "'first'" in record.error and "'second'" in record.error and "toy" in record.error
    assert isolated_registry.architecture("toy").plugin == "first"
    assert "second" in caplog.text


def test_duplicate_of_a_builtin_is_refused(isolated_registry):
    record = isolated_registry.register_plugin(make_plugin(toy("bert")), name="impostor")
    assert "zoo.plugins.bert" in record.error and "impostor" in record.error
    assert isolated_registry.architecture("bert").plugin == "zoo.plugins.bert"


def test_a_failing_registration_registers_nothing_of_that_plugin(isolated_registry):
    bad = make_plugin(toy("good-one"), toy("bert"), name="half")
    record = isolated_registry.register_plugin(bad, name="half")
    assert record.error
    assert "good-one" not in isolated_registry.architectures()


@pytest.mark.parametrize("arch, reason", [
    ("not an architecture", "not a zoo.registry.Architecture"),
    (Architecture(model_type="Bad Name", config="a.b:C", models={"base": "a.b:M"}), "model_type"),
    (Architecture(model_type="ok", config="no-colon", models={"base": "a.b:M"}), "import string"),
    (Architecture(model_type="ok", config="a.b:C", models={}), "at least one task"),
])
def test_malformed_registrations_are_reported_by_name(isolated_registry, arch, reason):
    record = isolated_registry.register_plugin(make_plugin(arch), name="sloppy")
    assert record.error and "sloppy" in record.error and reason in record.error
    assert isolated_registry.architecture("bert")  # everything else keeps working


def test_a_plugin_that_raises_in_its_hook_is_skipped(isolated_registry):
    module = types.ModuleType("boom")

    @hookimpl
    def register_architectures(register):
        raise RuntimeError("kaput")

    module.register_architectures = register_architectures
    record = isolated_registry.register_plugin(module, name="boom")
    assert "RuntimeError: kaput" in record.error
    assert "boom" not in [r.name for r in isolated_registry.records.values() if not r.error]


def test_a_misspelled_hook_is_an_error_naming_the_plugin(isolated_registry):
    module = types.ModuleType("typo")

    @hookimpl
    def register_architecture(register):  # missing the final "s"
        register(toy())

    module.register_architecture = register_architecture
    record = isolated_registry.register_plugin(module, name="typo")
    assert record.error and "register_architecture" in record.error
    assert "toy" not in isolated_registry.architectures()


def test_unknown_model_type_lists_registered_types(isolated_registry):
    with pytest.raises(UnknownModelTypeError) as info:
        isolated_registry.architecture("distilbert")
    message = str(info.value)
    assert "distilbert" in message and "bert" in message and "plugin" in message


def test_unknown_task_lists_the_tasks_it_has(isolated_registry):
    with pytest.raises(TaskNotSupportedError) as info:
        isolated_registry.architecture("bert").model_class("causal-lm")
    assert "causal-lm" in str(info.value) and "masked-lm" in str(info.value)


def test_unregister_removes_its_architectures(isolated_registry):
    isolated_registry.register_plugin(make_plugin(toy()), name="temp")
    isolated_registry.unregister_plugin("temp")
    assert "toy" not in isolated_registry.architectures()


def test_same_plugin_name_twice_is_refused(isolated_registry):
    isolated_registry.register_plugin(make_plugin(toy()), name="dup")
    with pytest.raises(PluginError):
        isolated_registry.register_plugin(make_plugin(toy("other")), name="dup")


def test_resolve_import_walks_attributes():
    assert resolve_import("zoo.registry:Registry.load") is Registry.load
    assert resolve_import(Registry) is Registry


# --- entry points -----------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_distributions(tmp_path, monkeypatch):
    """Two installed 'distributions' with zoo entry points: one good, one that fails to import."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "zoo_toy_plugin.py").write_text(textwrap.dedent("""
        from zoo.registry import Architecture, hookimpl

        @hookimpl
        def register_architectures(register):
            register(Architecture(model_type="toy", config="zoo.plugins.bert.config:BertConfig",
                                  models={"base": "zoo.plugins.bert.modeling:BertModel"}))
    """))
    (site / "zoo_broken_plugin.py").write_text("raise ImportError('missing dependency frobnicate')\n")
    for dist, module, ep in (("zoo-toy", "zoo_toy_plugin", "toy"), ("zoo-broken", "zoo_broken_plugin", "broken")):
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[zoo]\n{ep} = {module}\n")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_entry_point_plugins_load_lazily_and_failures_are_isolated(fake_distributions, caplog):
    caplog.set_level(logging.WARNING)
    registry = Registry(entry_points=True)
    assert not registry.records  # nothing happens until first use
    assert registry.architecture("toy").plugin == "toy"
    assert registry.records["toy"].distribution == "zoo-toy" and registry.records["toy"].version == "1.2.3"
    failed = {r.name: r.error for r in registry.failures()}
    assert "missing dependency frobnicate" in failed["broken"]
    assert "broken" in caplog.text
    assert registry.architecture("bert")


@pytest.mark.parametrize("allow, expected", [("", set()), ("toy", {"toy"}), ("zoo-toy", {"toy"}), ("broken, other", set())])
def test_zoo_load_plugins_limits_entry_points(fake_distributions, monkeypatch, allow, expected):
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", allow)
    registry = Registry(entry_points=True)
    builtin = set(Registry(entry_points=False).architectures())
    assert set(registry.architectures()) - builtin == expected
    assert "bert" in registry.architectures()  # built-ins are not filtered


def test_zoo_load_plugins_empty_makes_third_party_types_unknown(fake_distributions, monkeypatch):
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    with pytest.raises(UnknownModelTypeError, match="registered: bert"):
        Registry(entry_points=True).architecture("toy")


def test_zoo_getattr_is_lazy_and_complete():
    for name in zoo.__all__:
        assert getattr(zoo, name) is not None
    with pytest.raises(AttributeError):
        zoo.NoSuchThing  # noqa: B018


# --- pipeline tasks ---------------------------------------------------------------------------------------------------


def make_task_plugin(*tasks):
    module = types.ModuleType("tasks")

    @hookimpl
    def register_pipelines(register):
        for task in tasks:
            register(task)

    module.register_pipelines = register_pipelines
    return module


def test_pipeline_tasks_register_with_aliases(isolated_registry):
    from zoo.registry import PipelineTask

    task = PipelineTask("toy-task", "zoo.registry:Registry", aliases=("toy-alias",), default_model="org/toy@abc")
    record = isolated_registry.register_plugin(make_task_plugin(task), name="task-plugin")
    assert record.error is None and record.tasks == ["toy-task"] and "register_pipelines" in record.hooks
    assert isolated_registry.task("toy-alias").name == "toy-task"
    assert isolated_registry.task("toy-task").plugin == "task-plugin"
    assert "toy-task" in isolated_registry.tasks() and "toy-alias" not in isolated_registry.tasks()
    isolated_registry.unregister_plugin("task-plugin")
    assert "toy-task" not in isolated_registry.tasks()


def test_duplicate_task_or_alias_names_both_plugins(isolated_registry):
    from zoo.registry import PipelineTask

    isolated_registry.register_plugin(make_task_plugin(PipelineTask("t1", "a.b:C", aliases=("shared",))), name="p1")
    record = isolated_registry.register_plugin(make_task_plugin(PipelineTask("t2", "a.b:C", aliases=("shared",))), name="p2")
    assert "'p1'" in record.error and "'p2'" in record.error and "shared" in record.error
    assert "t2" not in isolated_registry.tasks()


def test_unknown_task_lists_registered(isolated_registry):
    from zoo.errors import UnknownTaskError

    with pytest.raises(UnknownTaskError, match="no-such-task.*registered"):
        isolated_registry.task("no-such-task")


def test_malformed_task_is_reported(isolated_registry):
    from zoo.registry import PipelineTask

    record = isolated_registry.register_plugin(make_task_plugin(PipelineTask("Bad Task", "nocolon")), name="bad-tasks")
    assert "task name" in record.error and "import string" in record.error


def test_zoo_trace_plugins_logs_each_hook_call(isolated_registry, monkeypatch, caplog):
    monkeypatch.setenv("ZOO_TRACE_PLUGINS", "1")
    caplog.set_level(logging.INFO, logger="zoo.registry")
    isolated_registry.register_plugin(make_plugin(toy("traced")), name="tracer")
    assert "register_architectures -> plugin tracer" in caplog.text


def test_no_trace_without_the_variable(isolated_registry, monkeypatch, caplog):
    monkeypatch.delenv("ZOO_TRACE_PLUGINS", raising=False)
    caplog.set_level(logging.INFO, logger="zoo.registry")
    isolated_registry.register_plugin(make_plugin(toy("quiet")), name="quiet")
    assert "-> plugin quiet" not in caplog.text


def test_zoo_load_plugins_naming_nothing_installed_warns_with_what_is(fake_distributions, monkeypatch, caplog):
    # A misspelt name used to load nothing in silence; now the warning names it and the installed plugins.
    caplog.set_level(logging.WARNING, logger="zoo.registry")
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "nonexistent, toy")
    registry = Registry(entry_points=True)
    assert "toy" in registry.architectures()
    assert registry.unmatched_requests == ["nonexistent"]
    warning = next(r.getMessage() for r in caplog.records if "ZOO_LOAD_PLUGINS" in r.getMessage())
    assert "'nonexistent'" in warning and "toy (zoo-toy)" in warning and "broken (zoo-broken)" in warning
    assert "'toy'" not in warning  # found names are not reported


def test_zoo_load_plugins_all_found_or_unset_is_quiet(fake_distributions, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="zoo.registry")
    for value in ("zoo-toy,broken", "zoo.plugins.bert", None):
        if value is None:
            monkeypatch.delenv("ZOO_LOAD_PLUGINS", raising=False)
        else:
            monkeypatch.setenv("ZOO_LOAD_PLUGINS", value)
        registry = Registry(entry_points=True)
        registry.load()
        assert registry.unmatched_requests == [] and registry.unmatched_message() == ""
    assert "ZOO_LOAD_PLUGINS" not in caplog.text


def test_zoo_plugins_shows_unmatched_zoo_load_plugins(fake_distributions, monkeypatch, capsys):
    from zoo.cli import main
    from zoo.registry import set_registry

    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "nonexistent")
    previous = set_registry(Registry(entry_points=True))
    try:
        assert main(["plugins"]) == 0
    finally:
        set_registry(previous)
    out = capsys.readouterr().out
    assert out.startswith("warning: ZOO_LOAD_PLUGINS names 'nonexistent', which no installed plugin provides")
    assert "toy (zoo-toy)" in out


def test_a_task_local_model_must_be_an_import_string_or_callable(isolated_registry):
    from zoo.registry import PipelineTask

    class Bad:
        @hookimpl
        def register_pipelines(self, register):
            register(PipelineTask("bad-local", "zoo.pipelines.base:Pipeline", local_model="not an import"))

    record = isolated_registry.register_plugin(Bad(), name="bad-local")
    assert "local_model 'not an import' is not an import string" in record.error
