# Two entry points, both safe on a fresh clone: `make test` (every check) and `make run`
# (a distributed stress test against the local stack). Everything else is their setup.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node/node_modules/.installed

.PHONY: setup protos test lint typecheck pytest run clean

setup: $(PY_STAMP) $(NODE_STAMP) protos

# The generated protobuf modules follow the schema even when it changes after the install.
protos: $(PY_STAMP)
	$(BIN)/python -c "import setup; setup.compile_protos()"

$(PY_STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(NODE_STAMP): node/package.json node/package-lock.json
	npm ci --prefix node --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) node/node_modules .mypy_cache .ruff_cache .pytest_cache reports .devnet
