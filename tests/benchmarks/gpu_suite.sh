#!/usr/bin/env bash
# The GPU benchmark suite, to run the moment a GPU machine is lent: extraction on one GPU (xlray extract against a
# bare batched forward pass) for a base-size BERT encoder and a ~1B-shaped llama decoder, random init, built
# locally (no network). Under 8 minutes on one H100/H200 (a hard stop at 470 s keeps what was measured so far).
# Figures: $OUT/gpu_suite.json if OUT is set, else ./gpu_suite.json; printed too. What each figure is:
# tests/benchmarks/bench_gpu.py's docstring.
#
#   bash tests/benchmarks/gpu_suite.sh               # needs a CUDA GPU: exit 2 without one
#   bash tests/benchmarks/gpu_suite.sh --cpu-smoke   # the same code paths at toy sizes on the CPU (a minute or two)
#   bash tests/benchmarks/gpu_suite.sh --repeats 3   # other flags go to bench_gpu.py (--help lists them)
#
# Install: a GPU node installs as the README says (`pip install torch==2.13.0 && pip install -e ".[dev]"`: the
# same command gets the CUDA build there). That line runs here only if xlray or its dependencies do not import.
# Without network, pre-install them, or point XLRAY_WHEELS at a folder of wheels made where pip works
# (`pip wheel -w wheels -e ".[dev]"`, for the node's Python and platform): then
# `pip install --no-index --find-links "$XLRAY_WHEELS" --no-build-isolation -e ".[dev]"` runs instead, keeping
# the node's own torch. The repo root goes on PYTHONPATH (the driver's and, inherited, Ray's workers'), so xlray
# itself imports from this checkout even where only its dependencies were installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import torch, transformers, ray, pydantic, pyarrow, psutil, xlray.extract.run" 2>/dev/null; then
  echo "gpu_suite: xlray or its dependencies do not import; installing" >&2
  if [[ -n "${XLRAY_WHEELS:-}" ]]; then
    "$PYTHON" -m pip install -q --no-index --find-links "$XLRAY_WHEELS" --no-build-isolation -e ".[dev]"
  else
    "$PYTHON" -m pip install torch==2.13.0 && "$PYTHON" -m pip install -e ".[dev]"
  fi || {
    echo "gpu_suite: the install failed (no network?); set XLRAY_WHEELS to a folder of wheels, see the header" >&2
    exit 2
  }
fi

json="${OUT:-.}/gpu_suite.json"
export PYTHONUNBUFFERED=1
# SIGINT at the stop, so that Ray is shut down and the JSON keeps every finished run ("complete": false).
timeout --signal=INT --kill-after=20 470 "$PYTHON" tests/benchmarks/bench_gpu.py --json "$json" "$@"
