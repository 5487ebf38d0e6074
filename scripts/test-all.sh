#!/usr/bin/env bash
# Runs Vantage's whole test suite on a fresh machine: installs what it needs
# (the wasm32-wasip2 target), builds the official checks and the test
# fixtures, then runs formatting, lint and every test (unit + end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32-wasip2 target"
rustup target add wasm32-wasip2

# System packages the tests use (Debian/Ubuntu names); only missing ones are
# installed. chromium: the headless status page test (tests/e2e/status_page.rs).
# prometheus, prometheus-alertmanager: real servers for the alerting and
# metrics tests (tests/e2e/servers.rs). prometheus-blackbox-exporter: the
# parity test (tests/e2e/blackbox_parity.rs). docker-registry (CNCF
# distribution 2.8): the registry tests (tests/e2e/registry.rs). nodejs, npm:
# the JavaScript/TypeScript checks (tests/e2e/js_checks.rs). systemd: its
# systemd-analyze verifies the unit in deploy/systemd and scores its sandbox
# (tests/e2e/deploy.rs; nothing is started).
APT_PACKAGES=(chromium prometheus prometheus-alertmanager prometheus-blackbox-exporter docker-registry nodejs systemd)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Debian's nodejs comes without npm (NodeSource's has it): npm only if absent.
command -v npm >/dev/null 2>&1 || missing+=(npm)
step "system packages: ${APT_PACKAGES[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

# moto in server mode: a real S3 API with Object Lock and conditional writes
# for the audit log tests (tests/e2e/audit.rs).
step "S3 test server: moto_server"
if ! command -v moto_server >/dev/null 2>&1; then
    pip install 'moto[server]'
fi

# The oras Python SDK: an independent OCI client for the registry
# interoperability test (tests/e2e/registry_oras.rs).
step "OCI client: oras (Python)"
if ! python3 -c "import oras" >/dev/null 2>&1; then
    pip install 'oras==0.2.43'
fi

# helm-python-sdk (Helm v4 as a library: no helm binary) and
# kubernetes-validate (offline Kubernetes schemas): render, lint and validate
# the Helm chart deploy/helm/vantage (tests/e2e/helm.rs, tests/helm/chart.py).
step "Helm chart test: helm-python-sdk, kubernetes-validate (Python)"
if ! python3 -c "import helm_python, kubernetes_validate" >/dev/null 2>&1; then
    pip install 'helm-python-sdk==0.2.2' 'kubernetes-validate==1.37.0'
fi

# componentize-py: builds the Python SDK's examples and a `vantage new
# --lang python` project (tests/e2e/python_checks.rs). That test vendors
# requests==2.32.3 itself (`python3 -m pip install --target`, cached under
# target/tmp/python-vendor), as a check's author does.
step "Python checks: componentize-py"
if ! componentize-py --version 2>/dev/null | grep -q '0.25.1'; then
    pip install 'componentize-py==0.25.1'
fi

# componentize-js and TypeScript, pinned by sdk/js/package-lock.json: build
# the JavaScript SDK's examples and a `vantage new --lang ts` project.
step "JavaScript checks: npm ci (sdk/js)"
if ! cmp -s sdk/js/package-lock.json sdk/js/node_modules/.vantage-lock; then
    npm ci --prefix sdk/js --no-audit --no-fund
    cp sdk/js/package-lock.json sdk/js/node_modules/.vantage-lock
fi

step "guest side: official checks and fixtures (checks/target/wasm32-wasip2/release)"
(cd checks && cargo build --release)

step "format"
cargo fmt --all --check
(cd checks && cargo fmt --all --check)

step "lint"
cargo clippy --workspace --all-targets -- -D warnings
(cd checks && cargo clippy --all-targets -- -D warnings)

step "tests (unit + end-to-end)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
    # nextest does not run doctests
    cargo test --workspace --doc
else
    cargo test --workspace --no-fail-fast
fi

step "SDK with its opt-in regex engine (both engines' assertions agree)"
cargo test -p vantage-sdk --all-features --lib

step "official checks' unit tests, natively (checks/ builds for wasm32-wasip2 by default)"
(cd checks && cargo test --target "$(rustc -vV | sed -n 's/^host: //p')" \
    -p http -p healthz -p tls -p tcp -p dns -p api-flow)

step "edge build: without the restore feature (no Kubernetes, no S3), built and run"
bash scripts/edge-build.sh
