#!/usr/bin/env bash
# Runs Vantage's whole test suite on a fresh machine: installs what it needs
# (the wasm32-wasip2 target), builds the official checks and the test
# fixtures, then runs formatting, lint and every test (unit + end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32-wasip2 target"
rustup target add wasm32-wasip2

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
