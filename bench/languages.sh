#!/usr/bin/env bash
# The same healthz check written in Rust, Python and JavaScript, measured
# from the command line as a check author meets them: component size, the
# first run (compiling into an empty compiled-component cache) with Winch
# (`vantage run`'s default) and with Cranelift (the daemon's), a cached run
# (process start + cache load + one run: the cold start a daemon restart or
# `vantage run` pays), and the peak RSS of each. Median of N runs.
#
#   bash bench/languages.sh [N]        # N defaults to 5
#
# Needs: target/release/vantage (cargo build --release --workspace), the
# official checks built (checks/), componentize-py 0.25.1 and
# sdk/js/node_modules (npm ci --prefix sdk/js), GNU time (/usr/bin/time).
# Everything runs against a Python http.server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-5}"
VANTAGE="$PWD/target/release/vantage"
WORK="$(mktemp -d)"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 -m http.server 0 --bind 127.0.0.1 --directory "$WORK" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do
    PORT="$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)"
    [ -n "$PORT" ] && break
    sleep 0.1
done
# A JSON health document: what the Rust healthz check expects; the Python
# and JavaScript examples ask for a 2xx only.
echo '{"status": "ok"}' >"$WORK/health.json"
TARGET="http://127.0.0.1:$PORT/health.json"

# The components.
cp checks/target/wasm32-wasip2/release/healthz.wasm "$WORK/rust.wasm"
(cd sdk/python/examples/healthz &&
    componentize-py -d "$OLDPWD/wit" -w check componentize -p "$OLDPWD/sdk/python" -p . app \
        -o "$WORK/python.wasm" >/dev/null)
mkdir -p "$WORK/js/vantage-check"
cp sdk/js/examples/healthz/app.js "$WORK/js/"
cp sdk/js/vantage-check/index.js "$WORK/js/vantage-check/"
(cd "$WORK/js" && "$OLDPWD/sdk/js/node_modules/.bin/componentize-js" --wit "$OLDPWD/wit" \
    --world-name check -o "$WORK/js.wasm" app.js >/dev/null)

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# One `vantage run` with compiler $3 (which must pass): "seconds maxrss_kib".
one() {
    local cache="$1" component="$2" compiler="$3"
    if ! /usr/bin/time -f '%e %M' -o "$WORK/time" \
        env VANTAGE_CACHE_DIR="$cache" "$VANTAGE" run "$component" --target "$TARGET" \
        --compiler "$compiler" >"$WORK/out" 2>&1; then
        echo "$component did not pass:" >&2
        cat "$WORK/out" >&2
        exit 1
    fi
    cat "$WORK/time"
}

printf '| language | component | first run, Winch | first run, Cranelift | cached run | peak RSS, first (Winch / Cranelift) | peak RSS, cached |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for lang in rust python js; do
    component="$WORK/$lang.wasm"
    size=$(stat -c %s "$component")
    : >"$WORK/winch"; : >"$WORK/cranelift"; : >"$WORK/cached"
    for i in $(seq "$N"); do
        one "$WORK/cache-$lang-w$i" "$component" winch >>"$WORK/winch"
        one "$WORK/cache-$lang-w$i" "$component" winch >>"$WORK/cached"
        one "$WORK/cache-$lang-c$i" "$component" cranelift >>"$WORK/cranelift"
    done
    winch_s=$(cut -d' ' -f1 "$WORK/winch" | median)
    cranelift_s=$(cut -d' ' -f1 "$WORK/cranelift" | median)
    cached_s=$(cut -d' ' -f1 "$WORK/cached" | median)
    winch_rss=$(cut -d' ' -f2 "$WORK/winch" | median)
    cranelift_rss=$(cut -d' ' -f2 "$WORK/cranelift" | median)
    cached_rss=$(cut -d' ' -f2 "$WORK/cached" | median)
    printf '| %s | %.1f MB | %.2f s | %.2f s | %.2f s | %.0f / %.0f MB | %.0f MB |\n' "$lang" \
        "$(echo "$size / 1000000" | bc -l)" "$winch_s" "$cranelift_s" "$cached_s" \
        "$(echo "$winch_rss / 1024" | bc -l)" "$(echo "$cranelift_rss / 1024" | bc -l)" \
        "$(echo "$cached_rss / 1024" | bc -l)"
done
