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
	@.venv/bin/dvc repro --all-pipelines  # also lab/dvc.yaml: live figures on the held-out lab captures

# The capture `make run` classifies: the lab's own if committed, else a shared CICIDS2017 one.
SHARED_DATA ?= $(or $(NETSENTRY_SHARED_DATA),../shared/data)
DEMO_PCAP := $(firstword $(wildcard data/lab/demo.pcap) $(wildcard $(SHARED_DATA)/pcaps/cicids2017/WebattackSQLinj.pcap))

run: repro
	@if [ -z "$(DEMO_PCAP)" ]; then \
	  echo "make run: no capture to classify (neither data/lab/demo.pcap nor $(SHARED_DATA)/pcaps/cicids2017/WebattackSQLinj.pcap; set NETSENTRY_SHARED_DATA)"; \
	else \
	  echo "== netsentry classify $(DEMO_PCAP) -o data/serve/verdicts.csv"; \
	  .venv/bin/netsentry classify "$(DEMO_PCAP)" -o data/serve/verdicts.csv; \
	fi

meter:
	@$(MAKE) -s -C capture

lint: setup-test
	@.venv/bin/ruff check .

test: setup-test lint
	@.venv/bin/python -m pytest

bench: setup-test
	@$(PY) -m bench.capture
