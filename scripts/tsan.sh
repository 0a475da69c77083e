#!/usr/bin/env bash
# ThreadSanitizer over the threaded tests of the ring core: the heap-backed rings between
# threads (exactly once per kind at capacities 1, 2 and 1024, blocking both ways, close) and
# the ring unit tests. std is rebuilt with the sanitizer (-Zbuild-std), so the first run takes
# a few minutes on 2 cores; it has its own target dir. Any report fails the run.
#
#   scripts/tsan.sh [extra libtest args]
set -euo pipefail
cd "$(dirname "$0")/.."
rustup +nightly component add rust-src >/dev/null 2>&1 || true
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="$RUSTFLAGS"
# halt_on_error: the first report ends the test binary with a non-zero code.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
# Fewer items than the default: TSan runs 5-15x slower.
export SHMQ_ITEMS="${SHMQ_ITEMS:-20000}"
run() {
    CARGO_TARGET_DIR=target/tsan cargo +nightly test -Zbuild-std --target "$target" -p shm-queue "$@"
}
run --lib -- ring:: "${@}"
run --test heap_threads -- "${@}"
echo "ThreadSanitizer: no reports"
