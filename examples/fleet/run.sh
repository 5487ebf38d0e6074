#!/usr/bin/env bash
# A fleet on one machine, in one command: a target, a central Prometheus
# (remote-write receiver, example rules) and Alertmanager (example
# grouping), three edges at locations edge-a, edge-b and edge-c pushing to
# it, and a central daemon showing the grid.
#
#   bash examples/fleet/run.sh          # Ctrl-C stops everything
#
# Then: http://127.0.0.1:19480/ (the fleet), http://127.0.0.1:19481/ (edge-a),
# http://127.0.0.1:19090/alerts (Prometheus), http://127.0.0.1:19093/ (Alertmanager).
# Make a location fail: `echo '{"status": "down"}' > $WORK/api.json`; make one
# go silent: kill its process (the PIDs are printed).
#
# Needs prometheus and prometheus-alertmanager (Debian packages;
# scripts/test-all.sh installs them), and builds vantage and the official
# checks if they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
VANTAGE="${VANTAGE:-$PWD/target/release/vantage}"
[ -x "$VANTAGE" ] || cargo build --release
[ -f checks/target/wasm32-wasip2/release/http.wasm ] || (cd checks && cargo build --release)
for bin in prometheus prometheus-alertmanager; do
    command -v "$bin" >/dev/null || { echo "$bin is missing: apt-get install $bin" >&2; exit 1; }
done
WORK="${WORK:-$(mktemp -d)}"
mkdir -p "$WORK"
echo "working directory: $WORK"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT INT TERM

echo '{"status": "ok"}' >"$WORK/health.json"
echo '{"status": "ok"}' >"$WORK/api.json"
python3 -m http.server 18088 --bind 127.0.0.1 --directory "$WORK" >"$WORK/target.log" 2>&1 &
PIDS+=($!)
prometheus --config.file=examples/fleet/prometheus.yml --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver \
    --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
prometheus-alertmanager --config.file=examples/alertmanager/alertmanager.yml \
    --storage.path="$WORK/alertmanager" --web.listen-address=127.0.0.1:19093 \
    --cluster.listen-address= --log.level=warn >"$WORK/alertmanager.log" 2>&1 &
PIDS+=($!)
sleep 2
port=19481
for location in edge-a edge-b edge-c; do
    "$VANTAGE" daemon --config examples/fleet/edge.toml --location "$location" \
        --listen "127.0.0.1:$port" --data-dir "$WORK/$location" --no-watch \
        >"$WORK/$location.log" 2>&1 &
    PIDS+=($!)
    echo "$location: http://127.0.0.1:$port/ (pid $!)"
    port=$((port + 1))
done
"$VANTAGE" daemon --config examples/fleet/central.toml --listen 127.0.0.1:19480 \
    --data-dir "$WORK/central" --no-watch >"$WORK/central.log" 2>&1 &
PIDS+=($!)
echo "the fleet: http://127.0.0.1:19480/ (pid $!)"
wait
