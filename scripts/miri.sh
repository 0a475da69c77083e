#!/usr/bin/env bash
# Miri over the heap-backed ring core (the same algorithm that runs in shared memory).
# Usage: scripts/miri.sh     (installs the nightly miri component if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
rustup +nightly component add miri rust-src >/dev/null 2>&1 || true
# /proc reads (creator pid and start time in the header) need the host's file system.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
CARGO_TARGET_DIR=target/miri cargo +nightly miri test -p shm-queue --lib -- ring:: "$@"
