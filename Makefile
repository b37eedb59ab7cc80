# ota-release: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FUN := npx -y @alicloud/fun@3.6.24
S := npx -y @serverless-devs/s@3.1.10
# Instance cap deploy-fun sets: template.yml's OTA_IOT_QPS x this <= 10 (docs/configuration.md).
FUN_MAX_INSTANCES := 1
STAMP := $(VENV)/.installed
# The function runs on CPython 3.10 on FC: a 3.10 venv with the layer's exact pins (and
# the test tools) runs its suites a second time. scripts/build_dist.py finds the 3.10
# (OTA_BUILD_PYTHON310, python3.10 on PATH, or pyenv's versions/3.10.*).
PY310_VENV := $(VENV)/py310
PY310_STAMP := $(PY310_VENV)/.installed
# The function's own suites: run in-process under 3.10, and with the local FC running
# the function's instances on 3.10 (OTA_FUNCTION_PYTHON).
# (test_docs.py is left out: it reads the CLI, which is not part of the function.)
PY310_INPROCESS := tests/unit tests/deploy/test_deploy_runtime_server.py \
	--ignore=tests/unit/test_docs.py
PY310_INSTANCES := tests/e2e tests/integration/test_local_fc.py tests/deploy/test_deploy_bootstrap.py
export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true

.PHONY: help venv test test-py310 node unit lint format demo up bench reliability soak dist check-deploy deploy-fun deploy-s clean

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## Create the virtualenv with pinned dependencies

test: $(STAMP) node ## Run the whole test suite, then the function's suites on CPython 3.10
	@$(BIN)/python -m pytest -q; main=$$?; \
	$(MAKE) --no-print-directory test-py310; py310=$$?; \
	if [ $$main -ne 0 ] || [ $$py310 -ne 0 ]; then \
		echo "make test: FAILED (main run exit $$main, CPython 3.10 run exit $$py310)" >&2; exit 1; \
	fi

test-py310: $(STAMP) ## The function's suites with the function on CPython 3.10 (FC's Python)
	@if ! py=$$($(BIN)/python scripts/build_dist.py --find-python310 2>/dev/null); then \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2; \
		echo "!! NO CPython 3.10 FOUND: the function was NOT tested on the Python FC runs." >&2; \
		echo "!! Looked at \$$OTA_BUILD_PYTHON310, python3.10 on PATH, pyenv's versions/3.10.*" >&2; \
		echo "!! Install one (pyenv install 3.10) or set OTA_ALLOW_NO_PY310=1 to go on." >&2; \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2; \
		test "$$OTA_ALLOW_NO_PY310" = 1; exit; \
	fi; \
	$(MAKE) --no-print-directory $(PY310_STAMP) PY310=$$py && \
	echo "== the function's suites on $$($(PY310_VENV)/bin/python -V) ($$py)" && \
	PYTHONPATH=src $(PY310_VENV)/bin/python -m pytest -q $(PY310_INPROCESS) && \
	OTA_FUNCTION_PYTHON=$(CURDIR)/$(PY310_VENV)/bin/python $(BIN)/python -m pytest -q $(PY310_INSTANCES)

$(PY310_STAMP): layers/requirements.txt requirements/function-tests.txt
	@test -n "$(PY310)" || { echo "run 'make test-py310' (it finds the 3.10)" >&2; exit 1; }
	rm -rf $(PY310_VENV)
	$(PY310) -m venv $(PY310_VENV)
	$(PY310_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PY310_VENV)/bin/python -m pip install --quiet --use-pep517 -r layers/requirements.txt -r requirements/function-tests.txt
	@touch $@

node: ## Install Node.js/npm if missing (the Funcraft check runs through npx)
	@command -v npx >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs npm; }

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

bench: $(STAMP) ## Measure the eight performance figures side by side (~4 GiB temp disk, 3-7 min)
	$(BIN)/python -m benchmarks.run

reliability: $(STAMP) ## The fault-injection suite including the 200-upload run
	OTA_RELIABILITY_FULL=1 $(BIN)/python -m pytest -q tests/reliability

soak: $(STAMP) ## Long seeded soak under faults; prints its figures (SOAK_UPLOADS, SOAK_SEED, SOAK_ARGS)
	$(BIN)/python scripts/soak.py --uploads $(or $(SOAK_UPLOADS),600) --seed $(or $(SOAK_SEED),7) $(SOAK_ARGS)

dist: $(STAMP) ## Build dist/layer.zip and dist/code.zip (reproducible)
	$(BIN)/python scripts/build_dist.py

check-deploy: $(STAMP) node ## fun validate, the fc3 schema check and the deploy tests
	$(FUN) validate -t template.yml
	$(BIN)/python scripts/check_fc3_schema.py
	$(BIN)/python -m pytest -q tests/deploy

deploy-fun: dist node ## Deploy with Funcraft via ROS, then cap instances: FUN_ARTIFACT_BUCKET=... FUN_PARAMS='-p BucketName=...' CAPACITY_ARGS='--account-id ...'
	$(FUN) validate -t template.yml
	$(FUN) package -t template.yml -b $(FUN_ARTIFACT_BUCKET) -o template.packaged.yml
	$(FUN) deploy -t template.packaged.yml --use-ros --stack-name ota-release -y $(FUN_PARAMS)
	$(BIN)/ota-release capacity --service ota-release --function create-firmware \
		--max-instances $(FUN_MAX_INSTANCES) $(CAPACITY_ARGS)

deploy-s: dist node ## Deploy with Serverless Devs (fc3; set the vars in s.yaml first)
	$(BIN)/python scripts/check_fc3_schema.py
	$(S) deploy -y

clean: ## Remove build output and caches
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
