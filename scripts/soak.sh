#!/usr/bin/env bash
# Soak: 10^9 items through each ring kind between processes (SPSC 1x1, MPSC 2x1, SPMC 1x2,
# MPMC 2x2, capacity 1024), every item checked for exactly-once delivery (a shared flag per
# item) and per-producer order (in each consumer). Each case is the exactly_once test's, with
# SHMQ_ITEMS raised; throughput includes the checking. Results go to RELIABILITY.md.
#
#   scripts/soak.sh [ITEMS=1000000000]      (≈ 10 min on 2 cores; ~1 GB of shared memory per case)
set -euo pipefail
cd "$(dirname "$0")/.."
items=${1:-1000000000}
cargo test --release -q -p shm-queue --test exactly_once --no-run 2>/dev/null
export SHMQ_ITEMS=$items SHMQ_CASE_TIMEOUT=${SHMQ_CASE_TIMEOUT:-7200}
failed=0
for case in spsc_1x1_cap1024_slice_to_into mpsc_2x1_cap1024_push_to_chunk \
    spmc_1x2_cap1024_chunk_to_pop mpmc_2x2_cap1024_slice_to_chunk; do
    start=$(date +%s.%N)
    if cargo test --release -q -p shm-queue --test exactly_once -- --exact "$case" >/tmp/soak.$$.out 2>&1; then
        verdict=ok
    else
        verdict=FAILED
        failed=1
        cat /tmp/soak.$$.out
    fi
    end=$(date +%s.%N)
    awk -v c="$case" -v n="$items" -v s="$start" -v e="$end" -v v="$verdict" \
        'BEGIN { t = e - s; printf "%-34s %s: %d items in %.1f s, %.1f M items/s\n", c, v, n, t, n / t / 1e6 }'
done
rm -f /tmp/soak.$$.out
left=$(find /dev/shm -maxdepth 1 -name 'shmq-test*' | wc -l)
echo "left in /dev/shm: $left"
[ "$failed" -eq 0 ] && [ "$left" -eq 0 ]
