#!/usr/bin/env bash
# Small, budget-capped selection on FB15k-237 and WN18RR, JOBS (default 2) at a time, each
# single-threaded at nice 19 under a ${MEM_KB:-8000000} KB address-space limit (a failed
# allocation then stops that run instead of the OOM killer hitting the shared machine).
# Per trial: ${BUDGET:-600} CPU-seconds of training; 2 trials = lr {0.01, 0.03}, the rest fixed
# (batch 1024, reg 0, 16 negatives / no label smoothing, reciprocal LCWA, dim 200); with
# --fast-distmult / --fast-complex; trials rank test only when valid improves
# (--trial-test improved), so there is no rerun of the winner.
# eval-every per (dataset, model, loop) gives about 3 evaluations per trial at the measured epoch
# costs (README).  Usage: bash bench/peers/pykeen/tune_large.sh [FB15k-237] [WN18RR]
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
LOGS="$REPO/bench/.data/kg-pykeen-logs"; mkdir -p "$LOGS"
declare -A EVERY=([FB15k-237:distmult:slcwa]=4 [FB15k-237:complex:slcwa]=2 [FB15k-237:complex:lcwa]=1
                  [FB15k-237:distmult:lcwa]=1 [WN18RR:distmult:slcwa]=10 [WN18RR:complex:slcwa]=5
                  [WN18RR:complex:lcwa]=1 [WN18RR:distmult:lcwa]=1)
DSETS=("$@"); [ ${#DSETS[@]} -eq 0 ] && DSETS=(FB15k-237 WN18RR)
jobs=()
for ds in "${DSETS[@]}"; do  # cheapest first
  for ml in distmult:slcwa distmult:lcwa complex:lcwa complex:slcwa; do
    jobs+=("$ds ${ml%:*} ${ml#*:} ${EVERY[$ds:$ml]}")
  done
done
printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-2}" -L 1 bash -c '
  log="'"$LOGS"'/tune-$0-$1-$2.log"; fast="--fast-$1"
  echo "$(date -u +%FT%TZ) start $0 $1 $2 eval-every $3"
  ( ulimit -v '"${MEM_KB:-8000000}"'; OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 \
    "'"$REPO"'/bench/.venv-pykeen/bin/python" "'"$HERE"'/tune.py" --dataset "$0" --model "$1" --loop "$2" \
    --trials 2 --budget '"${BUDGET:-600}"' --eval-every "$3" --patience 3 --trial-test improved $fast \
    --set "lr=[0.01,0.03]" --set "reg_weight=[0.0]" --set "batch_size=[1024]" --set "num_negs=[16]" \
    --set "label_smoothing=[0.0]" --set "inverse=[true]" ) > "$log" 2>&1
  echo "$(date -u +%FT%TZ) done $0 $1 $2 rc=$? $(grep -v "^wrote" "$log" | tail -1)"'
