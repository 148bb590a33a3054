#!/usr/bin/env bash
# Selection for every (model, loop) of the given datasets, JOBS at a time (default 2), each
# single-threaded at nice 19.  Budget per trial (training seconds) and trial count per dataset
# below; override with BUDGET=... TRIALS=...; extra tune.py arguments in EXTRA.
# Usage: bash bench/peers/pykeen/tune_all.sh nations umls kinship
# Logs: bench/.data/kg-pykeen-logs/tune-<dataset>-<model>-<loop>.log (gitignored).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
LOGS="$REPO/bench/.data/kg-pykeen-logs"; mkdir -p "$LOGS"
declare -A DEF_BUDGET=([nations]=45 [umls]=90 [kinship]=120 [WN18RR]=900 [FB15k-237]=900)
declare -A DEF_TRIALS=([nations]=10 [umls]=10 [kinship]=10 [WN18RR]=3 [FB15k-237]=3)
jobs=()
for ds in "$@"; do
  for model in distmult complex; do
    for loop in lcwa slcwa; do
      jobs+=("$ds $model $loop ${BUDGET:-${DEF_BUDGET[$ds]:-120}} ${TRIALS:-${DEF_TRIALS[$ds]:-10}}")
    done
  done
done
printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-2}" -L 1 bash -c '
  log="'"$LOGS"'/tune-$0-$1-$2.log"
  echo "$(date -u +%FT%TZ) start $0 $1 $2 budget $3 trials $4"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 "'"$REPO"'/bench/.venv-pykeen/bin/python" \
    "'"$HERE"'/tune.py" --dataset "$0" --model "$1" --loop "$2" --budget "$3" --trials "$4" '"${EXTRA:-}"' > "$log" 2>&1
  echo "$(date -u +%FT%TZ) done $0 $1 $2 rc=$? $(tail -2 "$log" | head -1)"'
