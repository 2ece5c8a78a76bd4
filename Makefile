# `make repro` and `make test` are the two commands a fresh clone needs (see README).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stages run with whatever PATH is active: put the venv first so they use its python.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH" DVC_NO_ANALYTICS=1

.PHONY: setup repro test clean

PLOTS_TEMPLATE := .dvc/plots_template.html
setup: $(STAMP) $(PLOTS_TEMPLATE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Offline `dvc plots`: vega bundles inlined from the installed vl-convert-python (none committed).
# Registered in .dvc/config.local, so a clone that has not run set-up keeps DVC's default page.
$(PLOTS_TEMPLATE): $(STAMP) lifting/plots_template.py
	$(BIN)/python -m lifting.plots_template --output $@
	$(RUN) dvc config --local plots.html_template plots_template.html

repro: setup
	$(RUN) dvc repro

test: setup
	$(RUN) python -m pytest

clean:
	rm -rf $(VENV)
