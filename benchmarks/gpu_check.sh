#!/usr/bin/env bash
# The GPU check in one command (docs/performance.md, "Running the GPU check"), e.g. on a bare GPU
# machine that holds this tree and the wheels of `make gpu-wheels`:
#   bash benchmarks/gpu_check.sh --device cuda --wheels .whl --out gpu-check
# and on a CPU, in seconds: bash benchmarks/gpu_check.sh --device cpu --quick --out /tmp/gpu-check
# PYTHON names the interpreter (default: python3). Options: benchmarks/gpu_check.py --help.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/gpu_check.py" "$@"
