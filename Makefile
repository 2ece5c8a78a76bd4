# `make repro` and `make test` are the two commands a fresh clone needs (see README).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stages run with whatever PATH is active: put the venv first so they use its python.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH" DVC_NO_ANALYTICS=1

.PHONY: setup repro test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

repro: setup
	$(RUN) dvc repro

test: setup
	$(RUN) python -m pytest

clean:
	rm -rf $(VENV)
