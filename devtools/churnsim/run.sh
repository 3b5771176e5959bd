#!/usr/bin/env bash
# One command: generate a ChurnSim data set (and its sanity analysis) for a seed.
#   devtools/churnsim/run.sh SEED OUT_DIR [generate.py options...]
# Creates .venv-churnsim (fightchurn + scikit-learn) on first use; needs the Debian
# `postgresql` package (apt-get install postgresql). Dev tooling: not part of `make test`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${CHURNSIM_VENV:-$root/.venv-churnsim}"
seed="${1:?usage: run.sh SEED OUT_DIR [options]}"
out="${2:?usage: run.sh SEED OUT_DIR [options]}"
shift 2
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import fightchurn, sklearn' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
"$venv/bin/python" "$here/generate.py" --seed "$seed" --out "$out" "$@"
"$venv/bin/python" "$here/analyze.py" "$out" > "$out/analysis.json"
cat "$out/analysis.json"
