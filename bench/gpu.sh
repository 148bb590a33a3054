#!/usr/bin/env bash
# The GPU part of the benchmarks, for the `device` tool (one lent H100/H200, torch 2.11, no
# internet, ../shared not sent).  Prepare here:
#   mkdir -p bench/.data && cp -r ../shared/data/amazon-book bench/.data/   (gitignored)
# then run on the device, carrying nothing else:
#   bash bench/gpu.sh            (writes bench/results/*-cuda*.json; copy them back and commit)
# Priorities, in order (it stops adding work when the budget is near): batch 256 at x1, eager
# then compiled (compile time reported apart); evaluation; the paper schedule; the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
export JNSKR_SHARED_DATA="${JNSKR_SHARED_DATA:-$PWD/bench/.data}"
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
OUT="${OUT:-$PWD/bench/results}"
python - <<'PY'
import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
python -m pytest -q -m gpu tests 2>&1 | tail -3
python -m bench.epoch --device cuda --datasets synthetic-x1 --models jnskr --batch-sizes 256 --name epoch-cuda-b256
python -m bench.epoch --device cuda --datasets synthetic-x1 --models jnskr --batch-sizes 256 --compile --name epoch-cuda-b256-compiled
python -m bench.eval --device cuda --batch-sizes 1024,4096
python -m bench.epoch --device cuda --datasets synthetic-x1,amazon-book --models jnskr,enmf --batch-sizes 256,1024,4096 --name epoch-cuda
python -m bench.epoch --device cuda --datasets synthetic-x2,synthetic-x4,synthetic-x8 --models jnskr --batch-sizes 1024 --name epoch-cuda-scaling
[ "$OUT" != "$PWD/bench/results" ] && cp bench/results/*cuda*.json "$OUT"/ 2>/dev/null
true
