# Every target installs what it needs from nothing: `make test` on a fresh clone is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/opsagent demo

lint: $(STAMP)
	$(BIN)/ruff check opsagent tests

test: $(STAMP)
	$(BIN)/ruff check opsagent tests
	$(BIN)/pytest -q
	$(BIN)/opsagent eval

# The offline eval on the embedded sandbox; fails below opsagent/evals/runner.py's threshold.
eval: $(STAMP)
	$(BIN)/opsagent eval

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
