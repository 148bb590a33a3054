#!/usr/bin/env bash
# Self-test of crosscheck.py on a PyKEEN-trained model: retrain the validation-selected
# configuration of tune-<dataset>-<model>-<loop>.json with run.py --save-embeddings, then let
# crosscheck.py rebuild the model from the .npy files (rows and labels shuffled: --permute) and
# evaluate it with PyKEEN's evaluator and the numpy reference.  Exit 0 iff PyKEEN's numbers are
# reproduced exactly (and the numpy reference agrees to 1e-6).
# Usage: bash bench/peers/pykeen/crosscheck_selftest.sh DATASET MODEL LOOP
# Writes bench/results/kg/pykeen/<dataset>-<model>-<loop>-crosscheck-s2020.json (the run) and
#        bench/results/kg/pykeen/crosscheck-<dataset>-<model>-<loop>.json (crosscheck's metrics);
# embeddings in bench/.data/kg-pykeen-emb/ (gitignored).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
DS="$1"; MODEL="$2"; LOOP="$3"
RES="$REPO/bench/results/kg/pykeen"; EMB="$REPO/bench/.data/kg-pykeen-emb/$DS-$MODEL-$LOOP"
VPY=("nice" "-n" "19" "$REPO/bench/.venv-pykeen/bin/python")
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mapfile -t ARGS < <(python3 - "$RES/tune-$DS-$MODEL-$LOOP.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p, f = d["winner"]["params"], d["fixed"]
out = ["--dim", f["dim"], "--eval-every", d["eval_every"], "--patience", d["patience"],
       "--budget", d["budget_train_seconds"], "--budget-clock", d.get("budget_clock", "wall")]
for k in ("lr", "reg_weight", "batch_size", "num_negs", "label_smoothing"):
    if p.get(k, f.get(k)) is not None:
        out += ["--" + k.replace("_", "-"), p.get(k, f.get(k))]
inv = p.get("inverse", f.get("inverse"))
out.append("--inverse" if inv else "--no-inverse")
if f.get("entity_norm") is False:
    out.append("--no-entity-norm")
out += ["--fast-distmult"] * bool(f.get("fast_distmult")) + ["--fast-complex"] * bool(f.get("fast_complex"))
print("\n".join(map(str, out)))
PY
)
"${VPY[@]}" "$HERE/run.py" --dataset "$DS" --model "$MODEL" --loop "$LOOP" "${ARGS[@]}" --tag crosscheck \
  --save-embeddings "$EMB" --quiet
"${VPY[@]}" "$HERE/crosscheck.py" --dataset "$DS" --model "$MODEL" --emb "$EMB" --permute 1 --reference \
  --expect "$RES/$DS-$MODEL-$LOOP-crosscheck-s2020.json" --out "$RES/crosscheck-$DS-$MODEL-$LOOP.json"
