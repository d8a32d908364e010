# buurtlens: `make run` sets up and runs the pipeline on the bundled corpus; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.buurtlens-setup
NL_MODEL := nl_core_news_sm

.PHONY: setup run test lint browser

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# BERTopic without its sentence-transformers/torch requirement (deps in pyproject.toml).
	$(BIN)/python -m pip install --quiet --no-deps "bertopic>=0.17,<0.18"
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

test: setup browser
	$(BIN)/python -m pytest

# The report's browser test needs Debian's chromium (no browser download at test time). Installed
# with apt when we are root; otherwise a note, and tests/test_report_browser.py skips with a reason.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			&& echo "setup: chromium installed (for the report's browser test)" \
			|| echo "setup: NOTE chromium could not be installed with apt-get; the browser test will be skipped"; \
	else echo "setup: NOTE chromium is not installed and cannot be (needs apt-get as root); the browser test will be skipped"; fi

lint: setup
	$(BIN)/ruff check pipeline tests
