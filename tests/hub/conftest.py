"""Fixtures for hub tests: a fake Hub on loopback and an environment pointing zoo at it.

Other test folders reuse them with ``from tests.hub.conftest import fake_hub, hub_env  # noqa: F401``.

- ``fake_hub``: a started :class:`tests.hub.fakehub.FakeHub` (Hub on 127.0.0.1, CDN on 127.0.0.2), stopped after.
- ``hub_env``: ``fake_hub`` plus an environment for zoo: ``ZOO_ENDPOINT`` = the fake hub, a fresh empty cache
  (``HF_HUB_CACHE``), no token, not offline (the suite's conftest sets HF_HUB_OFFLINE=1 for transformers), no
  progress bars, zero backoff, no remembered revision lookups. Yields a :class:`HubEnv` (``.hub``, ``.cache``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hub.fakehub import FakeHub


@dataclass
class HubEnv:
    hub: FakeHub
    cache: Path

    @property
    def endpoint(self) -> str:
        return self.hub.endpoint


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    hub = FakeHub().start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def hub_env(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    from zoo.hub import client, repo

    cache = tmp_path / "hf-home" / "hub"
    monkeypatch.setenv("ZOO_ENDPOINT", fake_hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("ZOO_CACHE", "ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN",
                 "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.0)
    monkeypatch.setattr(client, "BACKOFF_MAX_S", 0.0)
    repo.forget_lookups()
    client.set_session(None)
    yield HubEnv(fake_hub, cache)
    repo.forget_lookups()
    client.set_session(None)
