#!/usr/bin/env bash
# Builds a static (musl) release binary of `vantage` for deployment: the one
# the systemd unit and deploy/Containerfile run (see deploy/README.md).
#
#   scripts/static-build.sh [--target TRIPLE] [--edge] [--rev REV]
#
#   --target  x86_64-unknown-linux-musl (default) or aarch64-unknown-linux-musl
#   --edge    without the default `restore` feature (no Kubernetes, no S3)
#   --rev     build a clean export of a git revision (`git archive`, e.g.
#             HEAD) instead of the work tree with its uncommitted edits
#
# Environment:
#   CARGO_TARGET_DIR  where cargo builds (default /tmp/static-target: kept apart
#                     from target/ so it neither invalidates nor locks the
#                     development build)
#   JOBS              cargo -j (default 1: a release build of the whole graph
#                     must not starve a 2-core machine)
#
# Result: target/static/<triple>/vantage, checked to be statically linked and
# to run; target/static is the build context of deploy/Containerfile.
#
# Needs: rustup's `<triple>` target and a C compiler for it (aws-lc-sys and
# SQLite are C): `musl-gcc` from Debian's `musl-tools` for x86_64. Fails with
# what is missing otherwise. Takes tens of minutes: not run by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

target=x86_64-unknown-linux-musl
features=()
rev=""
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target="$2"; shift 2 ;;
        --target=*) target="${1#--target=}"; shift ;;
        --edge) features=(--no-default-features); shift ;;
        --rev) rev="$2"; shift 2 ;;
        --rev=*) rev="${1#--rev=}"; shift ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "static-build: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

fail() {
    printf 'static-build: %s\n' "$*" >&2
    exit 1
}

# 1. A C compiler for the target: aws-lc-sys (rustls' crypto) and SQLite
# (rusqlite, bundled) compile C with the `cc` crate, which needs a compiler
# that targets musl, not the host's glibc gcc.
triple_env=${target//-/_}
case "$target" in
    x86_64-unknown-linux-musl)
        cc_bin=$(command -v x86_64-linux-musl-gcc || command -v musl-gcc || true)
        [ -n "$cc_bin" ] ||
            fail "no C compiler for $target: install Debian's musl-tools (apt-get install musl-tools), which provides musl-gcc"
        ;;
    aarch64-unknown-linux-musl)
        cc_bin=$(command -v aarch64-linux-musl-gcc || true)
        [ -n "$cc_bin" ] ||
            fail "no C compiler for $target: it needs aarch64-linux-musl-gcc (a musl cross toolchain, e.g. musl.cc's or \`cargo zigbuild\` with zig); Debian ships none (its musl-tools is for the host architecture only, gcc-aarch64-linux-gnu targets glibc)"
        ;;
    *)
        fail "unsupported target $target (x86_64-unknown-linux-musl or aarch64-unknown-linux-musl)"
        ;;
esac
export "CC_${triple_env}=$cc_bin"
export "AR_${triple_env}=ar"
# The linker rustc uses for musl targets: its self-contained crt objects
# with the host's cc driver work for x86_64; the cross target needs its gcc.
if [ "$target" = aarch64-unknown-linux-musl ]; then
    export "CARGO_TARGET_$(echo "$triple_env" | tr '[:lower:]' '[:upper:]')_LINKER=$cc_bin"
fi

# 2. The Rust target.
if ! rustup target list --installed | grep -qx "$target"; then
    echo "static-build: installing the Rust target $target"
    rustup target add "$target" ||
        fail "the Rust standard library for $target cannot be installed (rustup target add $target failed)"
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/static-target}
jobs=${JOBS:-1}

if [ -n "$rev" ]; then
    src=$(mktemp -d "${TMPDIR:-/tmp}/vantage-src.XXXXXX")
    trap 'rm -rf "$src"' EXIT
    git archive --format=tar "$rev" | tar -x -C "$src" ||
        fail "cannot export revision $rev"
    echo "static-build: building $(git rev-parse --short "$rev") (git archive into $src)"
    cd "$src"
fi

echo "static-build: cargo build --release -p vantage --target $target ${features[*]} -j $jobs (CARGO_TARGET_DIR=$CARGO_TARGET_DIR, CC=$cc_bin)"
start=$(date +%s)
cargo build --release --locked -p vantage --target "$target" "${features[@]}" -j "$jobs"
elapsed=$(($(date +%s) - start))

built="$CARGO_TARGET_DIR/$target/release/vantage"
[ -x "$built" ] || fail "cargo succeeded but $built is missing"

# 3. It must be static: no interpreter, no shared libraries.
description=$(file -b "$built")
case "$description" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) fail "$built is not statically linked: $description" ;;
esac

out="$repo/target/static/$target"
mkdir -p "$out"
cp "$built" "$out/vantage"
# The rest of deploy/Containerfile's build context: an empty state directory
# for the image (owned by its non-root user there).
mkdir -p "$repo/target/static/rootfs/var/lib/vantage"

# 4. It runs (only where the machine can execute it).
host_arch=$(uname -m)
if [ "${target%%-*}" = "$host_arch" ]; then
    "$out/vantage" --version
fi

size=$(stat -c %s "$out/vantage")
printf 'static-build: %s (%s bytes, %s MiB) in %ss\n  %s\n' \
    "${out#"$repo"/}/vantage" "$size" "$((size / 1048576))" "$elapsed" "$description"
