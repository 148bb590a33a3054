#!/usr/bin/env bash
# Create the pinned RecBole 1.2.1 environment in bench/peers/recbole/.venv.
# Usage: bash bench/peers/recbole/setup.sh [python]   (default: python3.11 / python)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${1:-$(command -v python3.11 || command -v python3)}"
VENV="$HERE/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade pip "setuptools<81" wheel
# torch first, pinned: on this machine pip finds the CPU build on local disk.  Never let pip
# resolve an unpinned torch (it would pull a multi-GB CUDA build).
"$VPY" -m pip install -q "torch==2.13.0"
# Everything else with the pins; torch is pinned again so no resolver step can move it.
"$VPY" -m pip install -q -r "$HERE/requirements.txt"
"$VPY" - <<'PY'
import importlib, numpy, pandas, scipy, torch, recbole
print("numpy", numpy.__version__, "pandas", pandas.__version__, "scipy", scipy.__version__,
      "torch", torch.__version__, "recbole", recbole.__version__)
try:
    import dgl
    print("dgl", dgl.__version__)
except Exception as e:  # KGAT is then skipped by run.py
    print("dgl import failed:", type(e).__name__, e)
PY
