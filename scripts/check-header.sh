#!/usr/bin/env bash
# Checks that include/shm_queue.h is what cbindgen generates from shm-queue-ffi (for CI): exits
# non-zero, showing the difference, when the committed header is stale. With --write,
# regenerates the header instead. Installs cbindgen (pinned version) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.4
if ! command -v cbindgen >/dev/null 2>&1; then
    echo "installing cbindgen $CBINDGEN_VERSION" >&2
    cargo install cbindgen --locked --version "$CBINDGEN_VERSION"
fi
found=$(cbindgen --version | awk '{print $2}')
if [ "$found" != "$CBINDGEN_VERSION" ]; then
    echo "warning: cbindgen $found, the header was generated with $CBINDGEN_VERSION" >&2
fi

generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
cbindgen --quiet --config shm-queue-ffi/cbindgen.toml --crate shm-queue-ffi --output "$generated" shm-queue-ffi

if [ "${1:-}" = "--write" ]; then
    cp "$generated" include/shm_queue.h
    echo "wrote include/shm_queue.h"
    exit 0
fi
if ! diff -u include/shm_queue.h "$generated"; then
    echo "include/shm_queue.h is stale: run scripts/check-header.sh --write and commit it" >&2
    exit 1
fi
echo "include/shm_queue.h is up to date"
