# hotlead: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The interpreter of .venv: the distribution's python3.11 first. Debian's is one static
# binary built with profile-guided and link-time optimisation; a source build with
# --enable-shared and without --enable-optimizations (pyenv's default) runs the scorer
# 1.2-1.5x slower (docs/BENCHMARKS.md). Another: `make PYTHON=/path/to/python3.11 setup`
# (an existing .venv keeps its interpreter: remove .venv first to switch).
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) $(shell command -v python3.11 || command -v python3))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA := deploy/kafka/kafka.sh
STACK_PIDFILE := var/run/stack.pid

.PHONY: help run stop setup print-python native pure lint format test test-unit kafka-up kafka-down kafka-reset kafka-log topics schemas docs bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: setup kafka-up topics ## the whole pipeline: local Kafka, topics, ingest, scorer, handoff, a demo feed (Ctrl-C stops)
	$(BIN)/hotlead stack --pidfile $(STACK_PIDFILE)

stop: ## stop what make run started: the services, the demo feed and the local Kafka
	@if [ -f $(STACK_PIDFILE) ]; then \
	  pid=$$(cat $(STACK_PIDFILE)); kill -TERM $$pid 2>/dev/null || true; \
	  for i in $$(seq 1 120); do kill -0 $$pid 2>/dev/null || break; sleep 0.5; done; \
	  rm -f $(STACK_PIDFILE); echo "make stop: pipeline stopped"; \
	fi
	$(KAFKA) down

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "make setup: needs Python 3.11+ (found: '$(PYTHON)'); install it or run 'make PYTHON=/path/to/python3.11 setup'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The scoring core compiled with mypyc (services/scorer/native.py): rebuilt when its
# sources change; a compiled module whose .py changed since refuses to import.
NATIVE := services/scorer/native.json
NATIVE_SOURCES := $(patsubst %,services/scorer/%.py,compiled core evaluate matching murmur2 outputs record_loop state native)
define build_native
	@echo "compiling the scoring core with mypyc (log: $(VENV)/native-build.log) ..."
	@$(BIN)/python -m services.scorer.native build > $(VENV)/native-build.log 2>&1 || { \
	  tail -n 25 $(VENV)/native-build.log; \
	  echo "make: compiling the scoring core with mypyc FAILED (full log: $(VENV)/native-build.log)."; \
	  echo "It needs gcc and the Python headers (apt-get install gcc python3.11-dev)."; exit 1; }
	@$(BIN)/python -m services.scorer.native status
endef

$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	$(build_native)

setup: $(STAMP) $(NATIVE) ## create .venv/ with everything installed, compile the scoring core (idempotent)
	@want=$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null); \
	  have=$$($(BIN)/python -c 'import os, sys; print(os.path.realpath(sys._base_executable))'); \
	  [ -z "$$want" ] || [ "$$want" = "$$have" ] || \
	  echo "make setup: note: .venv runs $$have, not $$want (PYTHON); rm -rf .venv && make setup to switch"

native: $(STAMP) ## compile the scoring core with mypyc again (make setup does it when its files change)
	$(build_native)

pure: ## remove the compiled scoring core: its .py files run (slower); make setup compiles it again
	$(BIN)/python -m services.scorer.native clean

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup ## the whole test suite; starts a local Kafka when none answers (what CI runs)
	$(BIN)/pytest

test-unit: setup ## only the tests that need no broker
	$(BIN)/pytest -m 'not kafka'

kafka-up: ## start the local Kafka on 127.0.0.1:9092 (fetches the jars the first time)
	$(KAFKA) up

kafka-down: ## stop the local Kafka cleanly
	$(KAFKA) down

kafka-reset: ## stop the local Kafka and wipe its data
	$(KAFKA) reset

kafka-log: ## print the tail of the broker log
	$(KAFKA) log 80

topics: setup ## create every hotlead topic (idempotent)
	$(BIN)/hotlead topics create

schemas: setup ## regenerate the JSON Schema files from the models
	$(BIN)/python -m schemas.jsonschema

docs: setup ## regenerate the configuration table in docs/configuration.md
	$(BIN)/python -m services.common.config_docs

bench: setup ## the benchmarks (each benchmarks/bench_*.py) on the real broker; results in docs/BENCHMARKS.md
	@command -v wrk >/dev/null || { echo "make bench: needs wrk (apt-get install wrk)"; exit 1; }
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	$(KAFKA) up
	for bench in benchmarks/bench_*.py; do $(BIN)/python -m benchmarks.$$(basename $$bench .py) || exit 1; done

print-python: ## print the interpreter make setup builds .venv from
	@echo $(PYTHON)

clean: ## remove caches (keeps .venv and the broker's jars and data)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
