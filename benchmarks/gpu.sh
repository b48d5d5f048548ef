#!/usr/bin/env bash
# The GPU run (docs/GPU.md): `python -m benchmarks.gpu` at the paper's sizes. It sets nothing up:
# run it with a Python whose JAX sees the GPU (PYTHON=..., default python3). Its own budget
# (--budget-s 440) ends it first; `timeout` kills it at 465 s (470 s at worst), so it always ends
# within 8 minutes, keeping docs/gpu/results.json and docs/GPU.md as of its last finished stage
# (copies in $OUT when set). Extra arguments go to the module (e.g. --activations wavelet).
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout --kill-after=5 465 "${PYTHON:-python3}" -m benchmarks.gpu --budget-s 440 "$@"
