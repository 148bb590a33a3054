#!/usr/bin/env bash
# Run the RecBole baselines one after another, single-threaded at low priority.
# Usage: bash bench/peers/recbole/run_all.sh DATASET [MODEL[:TAG[:KEY=JSON]] ...]
# Default models: the paper's baselines RecBole has, plus BPR, LightGCN, KGIN; RippleNet last.
# Each run: --budget ${BUDGET:-300} s of training, killed (SIGTERM, partial JSON) after
# ${HARD:-1500} s; EXTRA="--dump-scores" adds run.py arguments; log in bench/peers/recbole/work/<dataset>-<model>...log
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DS="$1"; shift
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  MODELS=(BPR ENMF "ENMF:lr0.01:learning_rate=0.01" NeuMF NFM LightGCN CFKG CKE KGAT KGIN RippleNet)
fi
mkdir -p "$HERE/work"
for spec in "${MODELS[@]}"; do
  IFS=: read -r model tag kv <<< "$spec"
  args=(--dataset "$DS" --model "$model" --seed "${SEED:-2020}" --budget "${BUDGET:-300}")
  [ -n "${tag:-}" ] && args+=(--tag "$tag")
  [ -n "${kv:-}" ] && args+=(--set "$kv")
  log="$HERE/work/$DS-$model${tag:+-$tag}.log"
  echo "$(date -u +%FT%TZ) start $DS $model ${tag:-}"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 timeout -s TERM "${HARD:-1500}" \
    nice -n 19 "$HERE/.venv/bin/python" "$HERE/run.py" "${args[@]}" ${EXTRA:-} > "$log" 2>&1
  rc=$?
  echo "$(date -u +%FT%TZ) done rc=$rc $(tail -1 "$log")"
done
