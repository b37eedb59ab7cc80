# ota-release: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv test unit lint format demo up bench soak build clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## Create the virtualenv with pinned dependencies

test: $(STAMP) ## Run the whole test suite (sets itself up on a fresh clone)
	$(BIN)/python -m pytest -q

unit: $(STAMP) ## Unit tests only (no sockets)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP) ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(STAMP) ## Run the release pipeline end to end on the local cloud
	$(BIN)/python -m localcloud demo

up: $(STAMP) ## Start the local cloud (OSS, IoT, MNS, FC) until Ctrl-C
	$(BIN)/python -m localcloud up

clean: ## Remove build output and caches
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
