#!/usr/bin/env bash
# The edge build: `vantage` without the default `restore` feature (no
# Kubernetes, no S3). Builds it, proves the Kubernetes and AWS SDK crates are
# not in its dependency graph, and runs it: the demo's checks pass, and a
# configuration with [[restore]] is refused with the reason.
#
# Run after the test suite: it replaces target/debug/vantage (the next cargo
# command that builds the full binary puts it back).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo build -p vantage --no-default-features 2>&1 | tee "$log"
if grep -q '^warning' "$log"; then
    echo "edge build: warnings (see above)" >&2
    exit 1
fi

heavy=$(cargo tree -p vantage --no-default-features -e normal --prefix none \
    | grep -E '^(kube|kube-[a-z]+|k8s-openapi|aws-sdk-[a-z0-9]+|aws-config|aws-smithy-[a-z-]+) ' | sort -u || true)
if [ -n "$heavy" ]; then
    printf 'edge build: these must not be in its graph:\n%s\n' "$heavy" >&2
    exit 1
fi

bin=target/debug/vantage
"$bin" demo >/dev/null
if "$bin" validate examples/restore.toml 2>"$log"; then
    echo "edge build: a [[restore]] configuration was accepted" >&2
    exit 1
fi
grep -q 'built without restore support' "$log" || {
    cat "$log" >&2
    echo "edge build: the refusal does not say why" >&2
    exit 1
}
echo "edge build: ok ($(du -h "$bin" | cut -f1) debug binary, no kube/k8s-openapi/aws-sdk)"
