"""Every user-facing error zoo raises.

One family rooted at :class:`ZooError`, so callers can catch everything zoo says with one clause. Each message
says what was asked, what was found, and how to fix it. Where a builtin exception is the natural type
(a missing file, a bad value), the zoo error also inherits from it so ``except FileNotFoundError`` keeps working.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""


# --- registry and plugins -------------------------------------------------------------------------------------------


class PluginError(ZooError):
    """A plugin failed to import, or made a registration the registry refuses."""


class DuplicateRegistrationError(PluginError):
    """Two plugins registered the same model_type or task."""


class UnknownModelTypeError(ZooError, KeyError):
    """A config names a model_type that no loaded plugin provides."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class TaskNotSupportedError(ZooError, ValueError):
    """An architecture was asked for a task (model head) it does not register."""


# --- files, configs, weights ----------------------------------------------------------------------------------------


class UnknownTaskError(ZooError, KeyError):
    """``zoo.pipeline`` was asked for a task no loaded plugin registers."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(ZooError, ValueError):
    """config.json (or another JSON file) is missing, not JSON, or has a field of the wrong type."""


class ModelFileNotFoundError(ZooError, FileNotFoundError):
    """A local path does not exist, or a folder lacks the file that was needed."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WeightsError(ZooError, ValueError):
    """A weights file is truncated, corrupt, or not in a format zoo loads safely."""


class ShapeMismatchError(WeightsError, ConfigError):
    """A checkpoint tensor has a different shape from the model parameter of the same name (or the checkpoint has
    another number of layers): config.json does not match the weights, so it is a ConfigError too."""


class DeviceError(ZooError, ValueError):
    """A device that torch cannot parse, or that this machine does not have (``device="cuda"`` without a GPU)."""


class TokenizerError(ZooError, ValueError):
    """Tokenizer files are missing or inconsistent, or the tokenizer got input it cannot encode."""


class ImageError(ZooError, ValueError):
    """An image file cannot be read, or an image has a shape, range or channel count the processor cannot handle."""


class MissingDependencyError(ZooError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


# --- hub ------------------------------------------------------------------------------------------------------------


class HubError(ZooError):
    """A request to the Hub failed. Subclasses say why."""


class RepoNotFoundError(HubError):
    """The repository does not exist, or is private and no valid token was given."""


class RevisionNotFoundError(HubError):
    """The repository exists but the branch, tag or commit does not."""


class EntryNotFoundError(HubError, FileNotFoundError):
    """The revision exists but the file does not."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class GatedRepoError(RepoNotFoundError):
    """The repository is gated: accept its conditions on the Hub and pass a token."""


class AuthenticationError(HubError):
    """The Hub refused the token (401)."""


class OfflineModeError(HubError, FileNotFoundError):
    """Offline (or the network failed) and the file is not in the cache."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptDownloadError(HubError):
    """A downloaded file did not match its announced size or sha256; nothing was written to the cache."""


class UnsafePathError(HubError, ValueError):
    """A filename from the server (or the caller) would escape the snapshot folder."""


class HubUnavailableError(HubError, ConnectionError):
    """The Hub could not be reached (connection refused or reset, timeout) or kept answering 429/5xx after retries."""

    def __str__(self) -> str:  # OSError would otherwise print "[Errno None] None: None"
        return str(self.args[0]) if self.args else ""


class InvalidRepoIdError(HubError, ValueError):
    """A string that is neither an existing local folder nor a valid Hub repo id ('name' or 'org/name')."""


class CacheError(ZooError, OSError):
    """The cache folder cannot be used as it is (also an ``OSError``): see the subclasses."""

    def __str__(self) -> str:  # OSError would otherwise prefix "[Errno ...]" once errno is set
        return str(self.args[0]) if self.args else ""


class CacheNotFoundError(CacheError, FileNotFoundError):
    """The cache folder that was named (``--cache-dir``, ``ZOO_CACHE``, ``HF_HUB_CACHE``, ...) does not exist."""


class UnsafeCacheEntryError(CacheError):
    """A cache entry is a symlink (or another kind of file) where huggingface_hub's layout has a regular file, so
    writing or reading through it could reach outside the cache."""


class CacheFullError(CacheError):
    """The disk holding the cache ran out of space (ENOSPC/EDQUOT) during a download."""


# --- pipelines ------------------------------------------------------------------------------------------------------


class PipelineError(ZooError, ValueError):
    """A pipeline got input it cannot handle (empty text, no mask token, a question without context, ...)."""


class UnknownExportError(ZooError, AttributeError):
    """``zoo.<Name>`` was asked for, and neither zoo nor any installed plugin provides that name."""


# --- generation -----------------------------------------------------------------------------------------------------


class GenerationError(ZooError, ValueError):
    """``generate()`` or a GenerationConfig got an option value it cannot use (a temperature of 0 when sampling,
    more return sequences than beams, a prompt longer than max_length, ...)."""


class UnknownGenerationOptionError(GenerationError, TypeError):
    """``generate()`` or a GenerationConfig got an option it does not know, or one of transformers' that zoo does
    not implement; the message lists the supported options and the closest match. A TypeError as for any unexpected
    keyword argument, and a ValueError as transformers raises for an unused generate option."""


class ChatTemplateError(TokenizerError):
    """A chat template is missing or not valid Jinja, refused the conversation (``raise_exception``), or tried
    something the sandbox forbids (Python internals, files, imports, changing its inputs)."""


# --- the model API --------------------------------------------------------------------------------------------------


class ModelAPIError(ZooError, ValueError):
    """A model method got an argument it cannot use (``resize_token_embeddings(0)``, ``pad_to_multiple_of="8"``)."""


class UnsupportedModelOperationError(ZooError, NotImplementedError):
    """A model was asked for something its architecture does not have: the token embeddings of an image model,
    gradient checkpointing of a network without repeated blocks. A NotImplementedError, as transformers raises."""


# --- TensorFlow checkpoints (zoo.convert) ---------------------------------------------------------------------------


class CheckpointFormatError(WeightsError):
    """A TensorFlow checkpoint (a TensorBundle ``.index`` + ``.data-*`` shards, or a Keras ``.h5``) is not one, is
    corrupt or truncated (a checksum or size that does not match), or uses a feature zoo does not read (big-endian
    bundles, compressed index blocks, a newer bundle version)."""


class TFMappingError(WeightsError):
    """TensorFlow variables that do not fit the architecture's name mapping (zoo.convert.mapping): a layout none of
    the plugin's layouts matches, two variables for one parameter, a kernel that cannot be transposed."""


class VariableNotFoundError(ZooError, KeyError):
    """A TensorFlow checkpoint or ``.h5`` file was asked for a variable it does not hold (the message lists the
    closest names)."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


# --- export (zoo.export) --------------------------------------------------------------------------------------------


class ExportError(ZooError, ValueError):
    """A model cannot be exported for the asked task or format (ONNX, ExecuTorch): the message names the
    architecture and task, the op, branch or axis that failed, and what to do instead."""
