# Every target installs what it needs from nothing: `make test` on a fresh clone is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The exact version of every dependency, resolved from pyproject.toml by pip-compile;
# `make lock` refreshes it to the newest versions pyproject.toml allows.
CONSTRAINTS := constraints.txt
CODE := opsagent tests benchmarks

.PHONY: install demo test test-unit lint format eval lock clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/opsagent demo

# ruff (lint and format) and mypy (strict on the newest modules, see pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

# The fast loop: no sandbox, no servers, no database (tests/unit).
test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: lint
	$(BIN)/pytest -q
	$(BIN)/opsagent eval

# The offline eval on the embedded sandbox; fails below opsagent/evals/runner.py's threshold.
eval: $(STAMP)
	$(BIN)/opsagent eval

lock: $(STAMP)
	$(BIN)/pip-compile --quiet --upgrade --extra dev --strip-extras --no-emit-index-url \
	    --no-emit-find-links --output-file $(CONSTRAINTS) pyproject.toml
	sed -i 's|^#    pip-compile .*|#    make lock|' $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis *.egg-info
