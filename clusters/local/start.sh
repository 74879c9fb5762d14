#!/usr/bin/env bash
# Start a Ray cluster on this machine: one head and N worker nodes on loopback (docs/CLUSTERS.md).
#   clusters/local/start.sh [N=2] [CPUS_PER_NODE=1]
# Each node is a `ray start --block` process whose PID is kept in $RAYNAS_LOCAL_DIR (default
# .raynas/local-cluster), so clusters/local/stop.sh stops exactly these nodes and nothing else of Ray's.
set -euo pipefail
workers=${1:-2}
cpus=${2:-1}
dir=${RAYNAS_LOCAL_DIR:-.raynas/local-cluster}
port=${RAYNAS_LOCAL_PORT:-6390}
ray_bin=${RAY_BIN:-$(command -v ray || echo .venv/bin/ray)}
export RAY_AUTH_MODE=disabled  # loopback only: no token between the nodes
if [[ -e "$dir/pids" ]]; then
  echo "a local cluster is already running from $dir (clusters/local/stop.sh stops it)" >&2
  exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
short=$(mktemp -d /tmp/raynas-ray-XXXXXX)  # Ray's session dir: a short path (unix socket names are limited)
echo "$short" > "$dir/temp_dir"
nohup "$ray_bin" start --head --block --port "$port" --node-ip-address 127.0.0.1 --num-cpus "$cpus" \
  --include-dashboard=false --temp-dir "$short" > "$dir/head.log" 2>&1 &
echo $! >> "$dir/pids"
echo "127.0.0.1:$port" > "$dir/address"
for _ in $(seq 60); do  # the head answers within seconds
  grep -q "Ray runtime started" "$dir/head.log" && break
  kill -0 "$(head -1 "$dir/pids")" 2>/dev/null || { cat "$dir/head.log" >&2; exit 1; }
  sleep 0.5
done
for i in $(seq "$workers"); do
  nohup "$ray_bin" start --block --address "127.0.0.1:$port" --node-ip-address 127.0.0.1 --num-cpus "$cpus" \
    --temp-dir "$short/node-$i" > "$dir/worker-$i.log" 2>&1 &
  echo $! >> "$dir/pids"
done
"${PYTHON:-$(dirname "$ray_bin")/python}" - "$port" "$((workers + 1))" <<'PY'
import sys, time
import ray
ray.init(address=f"127.0.0.1:{sys.argv[1]}", logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 60
while len([n for n in ray.nodes() if n["Alive"]]) < int(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit(f"only {len(ray.nodes())} of {sys.argv[2]} nodes joined")
    time.sleep(0.5)
print(f"local Ray cluster up: {sys.argv[2]} nodes at 127.0.0.1:{sys.argv[1]}", ray.cluster_resources().get("CPU"), "CPUs")
PY
