#!/usr/bin/env bash
# Stop the local cluster started by clusters/local/start.sh: exactly the `ray start --block` processes
# whose PIDs it kept (each drains and stops its own node's processes on SIGTERM); never `ray stop`.
set -euo pipefail
dir=${RAYNAS_LOCAL_DIR:-.raynas/local-cluster}
[[ -e "$dir/pids" ]] || { echo "no local cluster in $dir" >&2; exit 0; }
mapfile -t pids < "$dir/pids"
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do  # workers first, the head last
  kill -TERM "${pids[i]}" 2>/dev/null || true
done
for pid in "${pids[@]}"; do
  for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
done
rm -rf "$(cat "$dir/temp_dir" 2>/dev/null || echo /nonexistent)"
rm -f "$dir/pids" "$dir/address" "$dir/temp_dir"
echo "local Ray cluster stopped (${#pids[@]} nodes)"
