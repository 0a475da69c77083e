#!/usr/bin/env bash
# Formatting, clippy with warnings as errors, rustdoc with warnings as errors (a link to a private
# item renders as nothing on docs.rs), and the atomics rule of shm-queue's ring core.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# Atomics of the ring core come through shm-queue's `sync` shim so that loom can model them
# (the tests' own bookkeeping may use std's).
if grep -rn 'std::sync::atomic' shm-queue/src/ring shm-queue/src/control.rs --exclude=tests.rs --exclude=loom_tests.rs; then
    echo "shm-queue's ring core must take atomics from crate::sync" >&2
    exit 1
fi
