#!/usr/bin/env bash
# Loom models of shm-queue's ring core (every interleaving of push/pop/close, within bounds).
# Usage: scripts/loom.sh            (takes a few minutes on 2 cores; its own target dir)
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
CARGO_TARGET_DIR=target/loom cargo test -p shm-queue --lib --release -- loom "$@"
