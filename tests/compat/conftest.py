"""The compatibility module's checkpoints: written once per session by transformers (see checkpoints.py)."""

from __future__ import annotations

import pytest
import transformers

import zoo
from tests.compat.checkpoints import Checkpoints, build


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory) -> Checkpoints:
    checkpoints = build(tmp_path_factory.mktemp("compat"))
    checkpoints.libraries = (transformers, zoo)
    checkpoints.written = checkpoints.fingerprint()
    return checkpoints
