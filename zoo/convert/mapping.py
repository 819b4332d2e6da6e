"""TensorFlow variable names -> the PyTorch checkpoint keys a plugin's model loads, and the tensor layout changes
between them.

A plugin declares, per model_type, a :class:`TFMapping`: one :class:`TFLayout` per naming scheme it can import
(Google's BERT release, OpenAI's GPT-2 release, transformers' TF classes in ``tf_model.h5``). A layout is data:
ordered regex ``renames`` on the ``/``-separated variable name (as the model's ``checkpoint_key_renames`` are on
PyTorch keys), then a table of ``leaves`` (the last segment: ``kernel`` becomes ``weight`` and is transposed,
``gamma`` becomes ``weight``, ...), then ``/`` becomes ``.``. So
``bert/encoder/layer_0/attention/self/query/kernel`` is renamed to ``bert/encoder/layer/0/attention/self/query/kernel``
and leaves as ``bert.encoder.layer.0.attention.self.query.weight``, transposed from TF's ``[in, out]`` to
PyTorch's ``[out, in]``. Names of the model's *published* PyTorch layout are produced (transformers' keys), so the
model's own key/tensor adapters apply afterwards exactly as for a safetensors file.

References: transformers 4.x ``load_tf_weights_in_bert`` / ``load_tf_weights_in_gpt2`` (the TF1 releases, and the
optimizer variables they skip) and ``modeling_tf_pytorch_utils.convert_tf_weight_name_to_pt_weight_name`` (the
Keras names of its TF classes: ``:0`` device suffixes, the model's own scope first, ``a___b`` meaning ``b``,
``layer_._3`` meaning ``layer.3``; Keras stores Dense kernels ``[in, out]``).

Nothing here imports torch or numpy: a layout works on names and shapes; :func:`apply_transform` takes any array
with ``.T``/``reshape`` (numpy or torch).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from zoo.errors import PluginError, TFMappingError

logger = logging.getLogger(__name__)

#: How a TensorFlow array becomes the PyTorch one: as it is; transposed (a 2-d Dense kernel, ``[in, out]`` ->
#: ``[out, in]``); or with its leading axes of size 1 dropped (OpenAI's conv1d ``w`` of ``[1, in, out]``, the
#: ``[1, out]`` bias of transformers' TFConv1D).
TRANSFORMS = ("none", "transpose", "squeeze")

#: Variables that are training state, never weights: optimizer slots (Google BERT's AdamWeightDecayOptimizer writes
#: ``<var>/adam_m`` and ``<var>/adam_v``; tf.train.AdamOptimizer ``<var>/Adam`` and ``<var>/Adam_1``; others
#: their own), step counters and mixed-precision loss scaling. Searched in the whole name.
OPTIMIZER_VARIABLES: tuple[str, ...] = (
    r"(^|/)(adam_m|adam_v|Adam|Adam_1|AdamWeightDecayOptimizer|AdamWeightDecayOptimizer_1|LAMB|LAMB_1|Adagrad|"
    r"Adafactor\w*|Momentum|RMSProp|RMSProp_1|Ftrl|Ftrl_1|ExponentialMovingAverage)(/|$)",
    r"(^|/)(global_step|bad_steps|good_steps|loss_scale|current_loss_scale|beta1_power|beta2_power|"
    r"learning_rate|iterations)$",
    r"^(optimizer|_CHECKPOINTABLE_OBJECT_GRAPH)(/|$)",
)

#: The leaves of Keras layers, as transformers' TF classes name them: Dense ``kernel`` (transposed), LayerNorm
#: ``gamma``/``beta``, Embedding ``embeddings`` (or ``weight`` of transformers' own embedding layers), biases.
KERAS_LEAVES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "kernel": ("weight", "transpose"), "gamma": ("weight", "none"), "beta": ("bias", "none"),
    "embeddings": ("weight", "none"), "weight": ("weight", "none"), "bias": ("bias", "none"),
})

#: What every transformers TF class's names need before their leaves are read: the model's own scope
#: (``tf_bert_model/``, the snake-cased class name; a sharded tf_model.h5 stores names without it) dropped,
#: ``mlm___cls`` read as ``cls``, ``layer_._3`` as ``layer/3``.
KERAS_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^tf_\w+/", ""),
    (r"(^|/)[^/]*___", r"\1"),
    (r"_\._(\d+)(?=/|$)", r"/\1"),
)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class TFLayout:
    """One naming scheme of TensorFlow variables for one architecture.

    ``detect`` is a regex searched in the variable names: a checkpoint is in this layout when one name matches.
    ``renames`` are ``(pattern, replacement)`` pairs applied with ``re.sub`` in order to the ``/`` name (its
    ``:0`` suffix removed); ``leaves`` maps the last segment to ``(PyTorch leaf, transform)``; a name whose last
    segment is not in ``leaves`` is left unmatched (reported, not loaded). ``tasks`` are ``(task, regex)`` pairs
    naming the head a checkpoint holds by a PyTorch key only that head has (the first that matches wins; none:
    "base"); ``num_labels`` is a regex of the PyTorch key whose first axis is the number of labels (Google's
    run_classifier heads have no config entry for it). ``skip`` are regexes of training state never loaded.
    """

    name: str
    description: str
    detect: str
    renames: tuple[tuple[str, str], ...] = ()
    leaves: Mapping[str, tuple[str, str]] = field(default_factory=lambda: KERAS_LEAVES)
    tasks: tuple[tuple[str, str], ...] = ()
    num_labels: str | None = None
    skip: tuple[str, ...] = OPTIMIZER_VARIABLES

    def translate(self, name: str) -> tuple[str, str] | None:
        """``(PyTorch key, transform)`` for one variable name, or None when no leaf of this layout names it."""
        path = strip_device_suffix(name)
        for pattern, replacement in self.renames:
            path = re.sub(pattern, replacement, path)
        head, _, leaf = path.rpartition("/")
        if leaf not in self.leaves:
            return None
        ours, transform = self.leaves[leaf]
        return ".".join([*filter(None, head.split("/")), ours]), transform

    def is_skipped(self, name: str) -> bool:
        return any(re.search(pattern, name) for pattern in self.skip)

    def matches(self, names: Iterable[str]) -> bool:
        pattern = re.compile(self.detect)
        return any(pattern.search(strip_device_suffix(n)) for n in names)

    def task_of(self, keys: Iterable[str]) -> str:
        """The head a checkpoint holds, from the PyTorch keys it maps to (see ``tasks``)."""
        keys = list(keys)
        for task, pattern in self.tasks:
            if any(re.search(pattern, k) for k in keys):
                return task
        return "base"


@dataclass(frozen=True)
class TFMapping:
    """What a plugin declares for TensorFlow import of one model_type (``Architecture.tf_mapping`` names it).

    ``layouts``: the naming schemes it reads, tried in order. ``release_configs`` maps a release folder's config
    file (``bert_config.json``) to a function (or its import string) turning that file's JSON into config.json's
    fields, for folders that have no config.json. ``release_tokenizer`` names a function ``(repo, kwargs) -> repo``
    that lets the architecture's tokenizer read a release folder (file names, ``do_lower_case``).
    """

    model_type: str
    layouts: tuple[TFLayout, ...]
    release_configs: Mapping[str, str | Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)
    release_tokenizer: str | Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.layouts, list):
            object.__setattr__(self, "layouts", tuple(self.layouts))
        problems = []
        if not isinstance(self.model_type, str) or not _NAME_RE.match(self.model_type):
            problems.append(f"model_type {self.model_type!r} is not a lowercase name like 'bert'")
        if not self.layouts or not all(isinstance(layout, TFLayout) for layout in self.layouts):
            problems.append("layouts must be a non-empty tuple of zoo.convert.mapping.TFLayout")
        for layout in self.layouts if isinstance(self.layouts, tuple) else ():
            if not isinstance(layout, TFLayout):
                continue
            for pattern in (layout.detect, *(p for p, _ in layout.renames), *(p for _, p in layout.tasks),
                            *layout.skip, *([layout.num_labels] if layout.num_labels else [])):
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as exc:
                    problems.append(f"layout '{layout.name}' has a pattern {pattern!r} that is not a regex ({exc})")
            for leaf, target in layout.leaves.items():
                if not (isinstance(target, tuple) and len(target) == 2 and target[1] in TRANSFORMS):
                    problems.append(f"layout '{layout.name}' maps leaf {leaf!r} to {target!r}, not (name, one of "
                                    f"{', '.join(TRANSFORMS)})")
        if problems:
            raise PluginError(f"TFMapping for '{self.model_type}' is malformed: " + "; ".join(problems))

    def layout_for(self, names: Iterable[str], where: str) -> TFLayout:
        """The first layout whose ``detect`` pattern finds one of ``names``."""
        names = list(names)
        for layout in self.layouts:
            if layout.matches(names):
                return layout
        known = "; ".join(f"{layout.name} ({layout.description})" for layout in self.layouts)
        shown = ", ".join(sorted(names)[:6]) + (", ..." if len(names) > 6 else "")
        raise TFMappingError(f"{where}: the variables ({shown or 'none'}) are in none of the TensorFlow layouts "
                             f"model_type '{self.model_type}' reads ({known}); check that the checkpoint and its "
                             f"config belong together, or pass --model-type / model_type= for the right architecture")


def strip_device_suffix(name: str) -> str:
    """``'tf_bert_model/bert/pooler/dense/kernel:0'`` -> ``'tf_bert_model/bert/pooler/dense/kernel'``."""
    return re.sub(r":\d+$", "", name)


def transformed_shape(shape: tuple[int, ...], transform: str) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if transform == "transpose":
        return shape[::-1]
    if transform == "squeeze":
        while len(shape) > 1 and shape[0] == 1:
            shape = shape[1:]
    return shape


def apply_transform(array: Any, transform: str) -> Any:
    """``array`` (numpy or torch) in the PyTorch layout; a transposed array is made contiguous again."""
    if transform == "transpose":
        if len(array.shape) != 2:
            raise TFMappingError(f"a transposed TensorFlow kernel must have 2 axes, this one has shape "
                                 f"{tuple(array.shape)}; the layout's leaves do not fit this checkpoint")
        out = array.T
        return out.contiguous() if hasattr(out, "contiguous") else out.copy()
    if transform == "squeeze":
        return array.reshape(transformed_shape(tuple(array.shape), transform))
    return array


# --- the plan: every variable's fate -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One variable to load: its TF name and shape, the PyTorch key it becomes, the transform, the shape after it."""

    tf_name: str
    key: str
    transform: str
    tf_shape: tuple[int, ...]
    shape: tuple[int, ...]


@dataclass
class MappingPlan:
    """What :func:`plan` decided for a whole checkpoint: ``tensors`` to load by PyTorch key, ``skipped`` training
    state (optimizer slots, step counters), ``unmatched`` variables no leaf of the layout names, and
    ``duplicates`` (a second variable of a key already planned with the same shape; Keras files repeat shared
    embeddings under each layer that uses them)."""

    layout: TFLayout
    tensors: dict[str, Planned] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def task(self) -> str:
        return self.layout.task_of(self.tensors)

    def num_labels(self) -> int | None:
        """The label count the checkpoint's head has, where the layout says which key holds it."""
        if self.layout.num_labels is None:
            return None
        for key, planned in self.tensors.items():
            if re.search(self.layout.num_labels, key) and planned.shape:
                return planned.shape[0]
        return None


def plan(shapes: Mapping[str, tuple[int, ...]], layout: TFLayout, where: str) -> MappingPlan:
    """Decide for each variable (name -> shape) whether it is loaded (and as what), skipped or unmatched."""
    result = MappingPlan(layout)
    for name in sorted(shapes):
        if layout.is_skipped(strip_device_suffix(name)):
            result.skipped.append(name)
            continue
        translated = layout.translate(name)
        if translated is None:
            result.unmatched.append(name)
            continue
        key, transform = translated
        tf_shape = tuple(int(d) for d in shapes[name])
        if transform == "transpose" and len(tf_shape) != 2:
            raise TFMappingError(f"{where}: variable '{name}' of shape {list(tf_shape)} would be transposed into "
                                 f"'{key}', but only a 2-axis kernel can be; the checkpoint is not in layout "
                                 f"'{layout.name}' ({layout.description})")
        planned = Planned(name, key, transform, tf_shape, transformed_shape(tf_shape, transform))
        earlier = result.tensors.get(key)
        if earlier is not None:
            if earlier.shape != planned.shape:
                raise TFMappingError(f"{where}: variables '{earlier.tf_name}' {list(earlier.tf_shape)} and '{name}' "
                                     f"{list(tf_shape)} both map to '{key}' with different shapes; the checkpoint "
                                     f"is not in layout '{layout.name}' ({layout.description})")
            result.duplicates.append(name)
            continue
        result.tensors[key] = planned
    if result.skipped:
        logger.debug("%s: skipped %d training-state variables (optimizer slots, step counters): %s", where,
                     len(result.skipped), ", ".join(result.skipped[:20]) + (", ..." if len(result.skipped) > 20 else ""))
    if result.duplicates:
        logger.debug("%s: %d variables repeat a weight already read (shared embeddings): %s", where,
                     len(result.duplicates), ", ".join(result.duplicates))
    return result


def resolve_mapping(spec: Any, model_type: str) -> TFMapping:
    """The TFMapping an architecture names (import string or object), checked."""
    from zoo.registry import resolve_import

    try:
        mapping = resolve_import(spec)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"model_type '{model_type}' names its TensorFlow mapping as {spec!r}, which cannot be "
                          f"imported ({type(exc).__name__}: {exc}); reinstall or fix the plugin") from exc
    if not isinstance(mapping, TFMapping):
        raise PluginError(f"model_type '{model_type}' names {spec!r} as its TensorFlow mapping, which is a "
                          f"{type(mapping).__name__}, not a zoo.convert.mapping.TFMapping; fix the plugin")
    if mapping.model_type != model_type:
        raise PluginError(f"model_type '{model_type}' names {spec!r} as its TensorFlow mapping, which is the one of "
                          f"model_type '{mapping.model_type}'; fix the plugin")
    return mapping
