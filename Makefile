# buurtlens: `make run` sets up and runs the pipeline on the bundled corpus; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.buurtlens-setup
NL_MODEL := nl_core_news_sm

.PHONY: setup run test lint browser lock

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# requirements.lock pins every package to the versions the committed figures came from.
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	@# BERTopic without its sentence-transformers/torch requirement (deps in pyproject.toml).
	$(BIN)/python -m pip install --quiet --no-deps -c requirements.lock "bertopic>=0.17,<0.18"
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

# After a deliberate upgrade (pip install -U ... in the venv): pin the new versions, then dvc repro.
lock: setup
	@{ sed -n '1,3p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable \
		| grep -v -i '^$(subst _,-,$(NL_MODEL))\|^$(NL_MODEL)'; } > requirements.lock.new
	@mv requirements.lock.new requirements.lock && echo "requirements.lock updated; now run dvc repro"

lint: setup
	$(BIN)/ruff check pipeline tests
