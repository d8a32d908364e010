# buurtlens: `make run` sets up and runs the pipeline on the bundled corpus; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.buurtlens-setup
NL_MODEL := nl_core_news_sm

.PHONY: setup run test lint clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# The Dutch model is only published as a GitHub release; without network the pipeline falls back.
	@$(BIN)/python -m spacy download $(NL_MODEL) >/dev/null 2>&1 \
		&& echo "setup: $(NL_MODEL) installed" \
		|| echo "setup: $(NL_MODEL) could not be downloaded; buurtlens will use spacy.blank('nl') + lookup lemmatizer"
	@# deduce builds its lookup tables once (about a minute) and caches them inside the venv.
	$(BIN)/python -m pipeline.pseudonymise
	@touch $(STAMP)

run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	@$(BIN)/python -m pipeline.results

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check pipeline tests
