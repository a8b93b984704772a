# Every target installs what it needs from nothing: `make test` on a fresh clone is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The exact version of every dependency, resolved from pyproject.toml by pip-compile;
# `make lock` refreshes it to the newest versions pyproject.toml allows.
CONSTRAINTS := constraints.txt
CODE := opsagent tests benchmarks infrastructure scripts

.PHONY: install demo test test-unit lint format eval lock clean lambda-zip gateway-schema screenshot

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

# The bridge Lambda's deployment package (infrastructure/lambda_zip.py): the opsagent modules
# the bridge loads and only their dependencies, as wheels for the runtime bridge-gateway.yaml
# names (tests/unit/test_deployment_templates.py checks the two agree), checked against
# Lambda's 50 MB zipped / 250 MB unzipped limits. REGISTRY=accounts.json ships a registry.
LAMBDA_ARCH := arm64
LAMBDA_PYTHON := 3.12
lambda-zip: $(STAMP)
	$(BIN)/python infrastructure/lambda_zip.py --arch $(LAMBDA_ARCH) --python $(LAMBDA_PYTHON) \
	    --out dist/bridge-lambda.zip $(if $(REGISTRY),--registry $(REGISTRY))

# The Gateway target's inline tool schema in bridge-gateway.yaml, from opsagent/bridge/tools.json.
gateway-schema: $(STAMP)
	$(BIN)/python infrastructure/tool_schema.py

# docs/page.png: the web page (GET /) answering the RDS count question, in headless Chromium
# (Debian's `chromium` package; Playwright drives it) against `opsagent serve` on the sandbox.
screenshot: $(STAMP)
	$(BIN)/python scripts/screenshot_page.py --out docs/page.png

lock: $(STAMP)
	$(BIN)/pip-compile --quiet --upgrade --extra dev --strip-extras --no-emit-index-url \
	    --no-emit-find-links --output-file $(CONSTRAINTS) pyproject.toml
	sed -i 's|^#    pip-compile .*|#    make lock|' $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis *.egg-info dist
