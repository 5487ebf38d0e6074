#!/usr/bin/env bash
# Copies the WIT contract (`wit/`, the one the host is built from) into the SDK
# package (`sdk/wit/`), which carries its own copy so that it can be packaged
# and published on its own (`cargo package -p vantage-sdk`). The copy includes
# `wit/deps/` (the WASI packages the world imports, `wasi:http` and what it
# uses), which the SDK's bindings are generated from too. Run it after
# editing anything under `wit/`: the SDK test `wit_copy` fails until the copy
# matches byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf sdk/wit
cp -R wit sdk/wit
echo "sdk/wit/ now matches wit/ ($(find wit -type f | wc -l) files)"
