#!/usr/bin/env bash
# Fuzzes shm-queue's header validation and open (fuzz/fuzz_targets/open_segment.rs) with
# cargo-fuzz and libFuzzer, starting from the committed corpus, for SECONDS (default 300).
# New inputs land in fuzz/corpus/open_segment; `scripts/fuzz.sh min` shrinks the corpus to
# the inputs that add coverage. A crash leaves its input in fuzz/artifacts/open_segment/;
# replay it with `cargo +nightly fuzz run open_segment fuzz/artifacts/open_segment/<file>`.
#
#   scripts/fuzz.sh [SECONDS=300 | min]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The harness stages each input as /dev/shm/shmq-fuzz.<pid>; a crash or kill can leave one.
cleanup() {
    for f in /dev/shm/shmq-fuzz.*; do
        [ -e "$f" ] || continue
        kill -0 "${f##*.}" 2>/dev/null || rm -f "$f"
    done
}
trap cleanup EXIT
if [ "${1:-}" = min ]; then
    cargo +nightly fuzz cmin open_segment -- -max_len=8200
else
    cargo +nightly fuzz run open_segment -- -max_total_time="${1:-300}" -max_len=8200 -print_final_stats=1
fi
