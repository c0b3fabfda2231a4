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

# A distributed chat run on the local stack: master + two workers, 20 followers, 60 s of chat.
# The stack is stopped whatever happens; reports land in reports/ (HTML, CSV, run summary).
RUN_USERS ?= 20
RUN_DURATION ?= 60
RUN_PORT ?= 5557
run: setup
	@mkdir -p reports
	@status=0; \
	trap '$(BIN)/python -m devnet down >/dev/null 2>&1 || true' EXIT INT TERM; \
	$(BIN)/python -m devnet up || exit 1; \
	set -a; . ./.devnet/env; set +a; \
	common="-f locustfile.py --stress-duration $(RUN_DURATION)"; \
	$(BIN)/locust $$common --headless --master --master-bind-host 127.0.0.1 \
	  --master-bind-port $(RUN_PORT) --expect-workers 2 -u $(RUN_USERS) -r $(RUN_USERS) \
	  -t 15m --csv reports/run --html reports/run.html --only-summary & master=$$!; \
	$(BIN)/locust $$common --worker --master-host 127.0.0.1 --master-port $(RUN_PORT) \
	  >reports/worker-1.log 2>&1 & w1=$$!; \
	$(BIN)/locust $$common --worker --master-host 127.0.0.1 --master-port $(RUN_PORT) \
	  >reports/worker-2.log 2>&1 & w2=$$!; \
	wait $$master || status=$$?; \
	for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 $$w1 $$w2 2>/dev/null || break; sleep 1; done; \
	kill $$w1 $$w2 2>/dev/null; wait $$w1 $$w2 2>/dev/null; \
	echo "reports: reports/run.html, reports/run_stats.csv, reports/run_summary.txt (exit $$status)"; \
	exit $$status
