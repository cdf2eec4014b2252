# StemeDB — two set-up commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2

.PHONY: run test check lint typecheck unit bench bench-quick bench-scale soak system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: create .venv, install, start the server on 127.0.0.1:18180 with data in ./stemedb-data
run: $(VENV)/.installed
	$(VENV)/bin/stemedb serve

system-deps:
	@bash scripts/system-deps.sh

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## test: install dev dependencies and run the whole suite (lint, types, unit, integration, crash)
test: $(VENV)/.installed-dev system-deps lint
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

check: test

## bench: benchmarks; writes bench/results/latest.json and latest.md
bench: $(VENV)/.installed-dev system-deps
	bash scripts/bench-deps.sh
	$(PY) -m bench.run

## bench-quick: for iteration (about 90 s): single ingest with its ceiling and the naive
## peer, batch ingest and point reads, 5-second runs, no profiles; figures go to
## bench/results/quick/ (latest.json and the docs stay as the full run left them)
bench-quick: $(VENV)/.installed-dev system-deps
	bash scripts/bench-deps.sh
	$(PY) -m bench.run --only ingest,batch,read --duration 5 --warmup 1 --no-profile \
		--out bench/results/quick

## bench-scale: the long scale benchmark (5M assertions)
bench-scale: $(VENV)/.installed-dev system-deps
	bash scripts/bench-deps.sh
	$(PY) -m bench.run --scale

## soak: the long runs: 200 kill -9 cycles, 2,000 simulated power losses, then 10 minutes
## of load on a real server (bench/results/soak.json)
soak: $(VENV)/.installed-dev
	bash scripts/bench-deps.sh
	STEMEDB_SOAK_CYCLES=$${STEMEDB_SOAK_CYCLES:-200} STEMEDB_CRASH_POINTS=$${STEMEDB_CRASH_POINTS:-2000} \
		$(VENV)/bin/pytest -q tests/crash -p no:randomly
	$(PY) -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
