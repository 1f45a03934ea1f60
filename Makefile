# netsentry: the two commands a user needs.
#   make run    set up, train on the default data (dvc repro), register the model, classify a capture
#   make test   set up, lint, run the test suite
PY := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: run test setup setup-test params repro lint meter bench

setup:
	@scripts/bootstrap.sh run

setup-test:
	@scripts/bootstrap.sh test

# Compose conf/ (Hydra) into params.yaml, the file every DVC stage reads.
params: setup
	@$(PY) -m pipeline.params

repro: params
	@$(PY) -m pipeline.clean --check-input
	@.venv/bin/dvc repro

run: repro
	@$(PY) -m pipeline.demo

meter:
	@$(MAKE) -s -C capture

lint: setup-test
	@.venv/bin/ruff check .

test: setup-test lint
	@.venv/bin/python -m pytest

bench: setup-test
	@$(PY) -m bench.capture
