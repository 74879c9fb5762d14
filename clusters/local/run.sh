#!/usr/bin/env bash
# Run a recipe on the local cluster started by clusters/local/start.sh:
#   clusters/local/run.sh recipes/quickstart.yaml [raynas run options...]
set -euo pipefail
dir=${RAYNAS_LOCAL_DIR:-.raynas/local-cluster}
[[ -e "$dir/address" ]] || { echo "no local cluster in $dir (start it with clusters/local/start.sh)" >&2; exit 2; }
recipe=$1
shift
export RAY_AUTH_MODE=disabled
exec "${RAYNAS_BIN:-$(command -v raynas || echo .venv/bin/raynas)}" run "$recipe" --address "$(cat "$dir/address")" "$@"
