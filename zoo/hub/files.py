"""One view of "the files of a model", whether they lie in a local folder or in a Hub repo.

An identifier is a local folder if one exists by that name; one that can only be a path (absolute, ``./``,
``../``, ``~``, more than one ``/``) and does not exist is refused at once, without asking the Hub; anything else
is a Hub repo id, whose errors (unknown repo, Hub unreachable, not cached offline) also say that no local folder of
that name exists.

The Auto layer, configs, models and tokenizers ask a :class:`RepoFiles` for files by name and never care where
they come from. A local folder answers from disk; a Hub repo (zoo.hub.repo) answers from the cache and downloads
what is missing, after one revision lookup for the whole repo.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from zoo.errors import ModelFileNotFoundError


class RepoFiles(Protocol):
    """The files of one model: a local folder or one revision of a Hub repo."""

    identifier: str

    def exists(self, filename: str) -> bool:
        """Whether the file is there (for a Hub repo: listed at this revision), without downloading it."""
        ...

    def get(self, filename: str) -> Path | None:
        """Local path of the file (downloading it if needed), or None if the repo has no such file."""
        ...

    def require(self, filename: str) -> Path:
        """Like :meth:`get`, but a missing file is an error that names the repo and the file."""
        ...


class LocalFolder:
    """A model folder on disk, as written by ``save_pretrained`` or copied from the Hub."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.identifier = str(folder)

    def _path(self, filename: str) -> Path:
        path = (self.folder / filename).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise ModelFileNotFoundError(f"{filename!r} points outside the model folder {self.folder}")
        return self.folder / filename

    def exists(self, filename: str) -> bool:
        return self._path(filename).is_file()

    def get(self, filename: str) -> Path | None:
        path = self._path(filename)
        return path if path.is_file() else None

    def require(self, filename: str) -> Path:
        path = self.get(filename)
        if path is None:
            present = ", ".join(sorted(p.name for p in self.folder.iterdir())) or "nothing"
            raise ModelFileNotFoundError(f"{self.folder} has no {filename} (it holds: {present})")
        return path

    def __repr__(self) -> str:
        return f"LocalFolder({str(self.folder)!r})"


def _looks_local(identifier: str) -> bool:
    """A path the user meant as a folder, as opposed to a Hub repo id like 'bert-base-uncased' or 'org/name'."""
    return (
        os.path.isabs(identifier)
        or identifier.startswith((".", "~"))
        or identifier.count("/") > 1
        or os.sep != "/" and os.sep in identifier
        or os.path.exists(identifier)
    )


def repo_files(identifier: str | os.PathLike[str] | RepoFiles, **hub_kwargs: Any) -> RepoFiles:
    """The files of ``identifier``: a local folder, or a Hub repo id resolved through the cache.

    Hub options: ``revision``, ``token``, ``cache_dir``, ``local_files_only``, ``force_download``.
    """
    if not isinstance(identifier, (str, os.PathLike)):
        return identifier  # already a RepoFiles: passing it along avoids a second lookup
    text = os.fspath(identifier)
    if os.path.isdir(text):
        return LocalFolder(text)
    if isinstance(identifier, os.PathLike) or _looks_local(text):
        if os.path.exists(text):
            raise ModelFileNotFoundError(f"{text} is a file; from_pretrained expects the folder that holds config.json")
        # A path, not a repo id: asking the Hub could only fail, slowly when it is unreachable.
        raise ModelFileNotFoundError(f"{text} does not exist (no local folder at "
                                     f"{os.path.abspath(os.path.expanduser(text))}, and a path is not a Hub repo id); "
                                     f"pass an existing model folder, or a Hub repo id like 'org/name'")
    from zoo.hub.repo import HubRepo

    repo = HubRepo(text, **hub_kwargs)
    # 'bert-tiny' or 'models/bert' could be a mistyped folder as well as a repo id: the Hub's errors say both.
    repo.no_local_folder = f"looked in {os.getcwd()}"
    return repo


def locate(identifier: str | os.PathLike[str] | RepoFiles, filename: str, **hub_kwargs: Any) -> Path:
    """Local path of one file of a model folder or Hub repo."""
    return repo_files(identifier, **hub_kwargs).require(filename)
