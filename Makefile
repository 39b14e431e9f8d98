# Set-up is part of every target: a fresh clone needs nothing but python3 (>= 3.9) and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test mutation gpu-wheels clean

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

# Wheels of what a bare GPU machine lacks (benchmarks/gpu_wheels.txt), for Python 3.12 on
# manylinux x86_64, into the git-ignored $(GPU_WHEELS); copy it there beside the tree and run
# benchmarks/gpu_check.sh --wheels $(GPU_WHEELS) (docs/performance.md, "Running the GPU check").
GPU_WHEELS ?= .whl
GPU_PLATFORMS := $(foreach p,manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64,--platform $(p))
GPU_PIP := --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $(GPU_PLATFORMS)

gpu-wheels:
	rm -rf $(GPU_WHEELS)
	$(PYTHON) -m pip download --quiet $(GPU_PIP) -d $(GPU_WHEELS) -r benchmarks/gpu_wheels.txt
	@echo "wheels: $$(du -sh $(GPU_WHEELS) | cut -f1) in $(GPU_WHEELS)/; the tracked tree: $$(git ls-files -z | du -ch --files0-from=- | tail -1 | cut -f1)"

clean:
	rm -rf runs build *.egg-info
