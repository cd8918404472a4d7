# hotlead: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA := deploy/kafka/kafka.sh

.PHONY: help run setup lint format test test-unit bench kafka-up kafka-down kafka-reset kafka-log topics schemas docs clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: setup kafka-up topics ## the whole pipeline: local Kafka, topics, the services, a demo feed
	@echo "make run: Kafka and the topics are up. The services (ingest, scorer, handoff) are not built yet; see README.md."

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "make setup: needs Python 3.11+ (found: '$(PYTHON)'); install it or run 'make PYTHON=/path/to/python3.11 setup'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv/ with everything installed (idempotent)

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

bench: setup ## the benchmarks on the real broker; results in docs/BENCHMARKS.md
	$(BIN)/python -m benchmarks.scorer

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

clean: ## remove caches (keeps .venv and the broker's jars and data)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
