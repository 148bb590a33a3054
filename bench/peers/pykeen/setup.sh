#!/usr/bin/env bash
# Create the pinned PyKEEN 1.11.1 environment bench/.venv-pykeen (gitignored) and extract the
# five ConvE-format KG datasets into bench/.data/kg/<name>/ (gitignored; sha256-checked).
# Usage: bash bench/peers/pykeen/setup.sh [python] [archive_dir]
#        (defaults: python3.11, /work/shared/data/kg)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
PY="${1:-$(command -v python3.11 || command -v python3)}"
ARCH="${2:-/work/shared/data/kg}"
VENV="$REPO/bench/.venv-pykeen"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade "pip==26.3" wheel
# torch first, pinned: pip finds the CPU build on this machine's disk.  An unpinned torch would
# pull a multi-GB CUDA build, so the rest is installed with a constraint that pins it again.
"$VPY" -m pip install -q "torch==2.13.0"
CONS="$(mktemp)"; trap 'rm -f "$CONS"' EXIT
echo "torch==2.13.0" > "$CONS"
"$VPY" -m pip install -q -c "$CONS" -r "$HERE/requirements.txt"
"$VPY" -c "import torch, numpy, pandas; from pykeen.version import get_version; \
print('pykeen', get_version(), 'torch', torch.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__)"

# datasets (read-only archives; never copied into the repository)
DATA="$REPO/bench/.data/kg"
while read -r name sha; do
  [ -f "$DATA/$name/test.txt" ] && continue
  echo "$sha  $ARCH/$name.tar.gz" | sha256sum -c --quiet
  mkdir -p "$DATA/$name" && tar -xzf "$ARCH/$name.tar.gz" -C "$DATA/$name"
done <<'SUMS'
FB15k-237 311df7930f842a02979eaa7a802484a6afe62303c07f915f1e6edbc30cbe05e8
WN18RR 1eb9152f804c140d163462c0d49f65e5a0b30ab5fbb375c5e3353c11a6249060
kinship a3cb9ca67213eb38133aebc12901195e283d844ebd59f1a6cbf2d4fa12ced4e6
nations feb3e3e027103089934ea7dfb67d2048d8a43e65d6757a86f2e037acb66f640b
umls 26223aa91f0ec8db2324e0f489b9a4425e04d1d0df72ce5cfd62af4b91aee6fd
SUMS
wc -l "$DATA"/*/train.txt
