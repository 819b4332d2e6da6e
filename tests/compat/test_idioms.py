"""Everyday transformers idioms, written once and run twice: against transformers and against zoo, on the same
small checkpoints (tests/compat/checkpoints.py), with one deep comparison of the results (tests/compat/compare.py).

The idioms live in idioms_tokenizer.py, idioms_generate.py, idioms_model.py and idioms_chat.py, each a plain
``idiom(lib, ckpt)`` in transformers' spelling: ``import zoo as transformers`` is the promise they check. Each idiom
seeds what it draws (``lib.set_seed`` or ``torch.manual_seed``, as users do), so the random state transformers' run
leaves behind never decides what zoo's run draws.
"""

from __future__ import annotations

import pytest
import transformers

import zoo
from tests.compat import idioms_chat, idioms_generate, idioms_model, idioms_tokenizer
from tests.compat.compare import assert_same
from tests.compat.idiom import IDIOMS

MODULES = (idioms_tokenizer, idioms_generate, idioms_model, idioms_chat)


@pytest.mark.parametrize("idiom", IDIOMS, ids=lambda f: f.__name__)
def test_idiom_gives_the_same_result_in_both_libraries(idiom, ckpt):
    expected = idiom(transformers, ckpt)
    assert expected is not None and expected != {} and expected != []  # an idiom must return something to compare
    got = idiom(zoo, ckpt)
    assert ckpt.fingerprint() == ckpt.written, "an idiom wrote into a shared checkpoint; save into ckpt.tmp()"
    assert_same(got, expected)


def test_the_list_covers_every_area_of_the_issue():
    assert len(IDIOMS) >= 70
    per_module = {module.__name__.rsplit(".", 1)[1]: sum(f.__module__ == module.__name__ for f in IDIOMS)
                  for module in MODULES}
    assert all(count >= 10 for count in per_module.values()), per_module
