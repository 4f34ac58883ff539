# lookalike: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_CATALOG ?= .lookalike/demo-catalog
HOST ?= 127.0.0.1
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo demo-catalog serve test lint bench load clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 installs a CPU build from a local wheel on the project machines (see README).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing lookalike and its dependencies into $(VENV) (about 1-2 minutes)..."
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[serve,torch,hub,eval,milvus,milvus-server,ray,heif,quantize,dev]'
	touch $@
	@echo "Installed: run the command as $(BIN)/lookalike, or 'source $(BIN)/activate' first."

install: $(VENV)/.installed

# Idempotent: an unchanged picture is skipped, an interrupted ingest resumes.
demo-catalog: install
	$(BIN)/lookalike ingest $(DEMO_CATALOG) --csv data/demo/products.csv

# Build the demo catalogue, show a search from a phone photo, then serve the web app.
demo: demo-catalog
	$(BIN)/lookalike search $(DEMO_CATALOG) data/demo/queries/tshirt.jpg -k 10
	@echo "Serving the web app on http://$(HOST):$(PORT) (API docs at /docs); Ctrl-C to stop."
	$(BIN)/lookalike serve $(DEMO_CATALOG) --host $(HOST) --port $(PORT)

serve: demo-catalog
	$(BIN)/lookalike serve $(DEMO_CATALOG) --host $(HOST) --port $(PORT)

# Benchmarks (outside the test suite; results and machine in docs/performance.md). Long: builds a 44k and a
# 1M-product catalogue under .lookalike/bench/ on first run.
bench: demo-catalog
	$(BIN)/python bench/cli_ingest.py --json .lookalike/bench/cli_ingest.json
	$(BIN)/python bench/ingest.py --before 560058e^ --full --json .lookalike/bench/ingest.json
	$(BIN)/python bench/query.py --sweep --json .lookalike/bench/query.json
	$(BIN)/python bench/memory.py --json .lookalike/bench/memory.json
	$(BIN)/python bench/ann_codes.py --json .lookalike/bench/ann_codes.json
	$(BIN)/python bench/api_latency.py --catalog $(DEMO_CATALOG)

# Load test: 16 concurrent clients for 30 s against the demo catalogue (see docs/reliability.md).
load: demo-catalog
	$(BIN)/lookalike serve $(DEMO_CATALOG) --port 8765 --log-level warning & pid=$$!; \
	$(BIN)/python bench/load.py --url http://127.0.0.1:8765 --clients 16 --duration 30 --wait 120; rc=$$?; \
	kill $$pid; exit $$rc

test: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

clean:
	rm -rf $(VENV) .lookalike .pytest_cache .ruff_cache
