# Set-up is part of every target: a fresh clone needs nothing but python3 (>= 3.9) and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test mutation clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch torchvision
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

QUICKSTART_RUN := runs/quickstart/quickstart

quickstart: setup
	rm -rf $(QUICKSTART_RUN)
	$(VENV)/bin/gan-suite fit --config configs/quickstart.yaml --trainer.logger.init_args.version=quickstart
	$(VENV)/bin/gan-suite evaluate --ckpt $(QUICKSTART_RUN)/checkpoints/last.ckpt --num-samples 5000
	@echo "sample grids: $(QUICKSTART_RUN)/samples/ (last: $$(ls $(QUICKSTART_RUN)/samples | tail -1))"

test: setup
	$(PY) -m pytest -q tests

# Mutation testing of the core modules (slow; before a release, not part of `make test`).
# MUTATE="losses ema" limits it to some modules (names in tools/mutation.py); see docs/mutation.md.
MUTATE ?=

mutation: setup
	$(PY) -m pip install --quiet -e '.[test,mutation]'
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) tools/mutation.py $(MUTATE)

clean:
	rm -rf runs build *.egg-info
