#!/usr/bin/env bash
# Runs the criterion benchmark suites of the root package (benches/*.rs), one after the other.
#
#   scripts/bench.sh [quick|full] [criterion arguments...]
#
#   quick (the default): the whole suite in about 3 minutes on 2 cores, plus the build. Sets
#         SHMPIPE_BENCH_QUICK=1, which the suites read to shrink their matrices (no ring capacity
#         65536; no sieve N=10^6/S=1000, and no queue depth 10 at N=10^6), and runs criterion
#         with --warm-up-time 0.5 --measurement-time 1 --sample-size 10. Good for a smoke run
#         and rough comparisons, not for claims.
#   full: criterion's defaults (3 s warm-up, 5 s measurement, 100 samples; the slow groups set
#         10-20 samples and flat sampling themselves) over the full matrices: about 25 minutes,
#         two thirds of it the sieve at N=10^6 (a depth-10 pipeline run there takes ~20 s).
#         Run it on an otherwise idle machine.
#
# Suites: throughput (rings vs crossbeam / std channels, pipes, Unix sockets), latency
# (ping-pong vs a raw futex and a pipe; idle consumer CPU), runtime (spawn + join, chains of
# stages), sieve (pipeline vs threads, sequential, reference). BENCHES="throughput latency" runs
# a subset. Extra arguments go to every suite's criterion, e.g. a filter or a baseline:
#
#   scripts/bench.sh quick spsc_u64
#   scripts/bench.sh full --save-baseline before
#
# On x86_64 the suites are built as static executables, as `cargo sieve` builds the sieve
# (.cargo/config.toml says why: every fork of a stage costs in proportion to the mappings of the
# process it is forked from). LINK=dynamic builds them as plain `cargo bench` does.
#
# Reports land in target/criterion/. The benchmarks fork processes and create segments named
# /shmpipe-bench-<pid>-<n> (runs of the runtime use /shmpipe.<...>, which scripts/check-leftovers.sh
# covers); the script fails if any /shmpipe-bench-* segment is left in /dev/shm afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-quick}
case "$mode" in
    quick | full) shift || true ;;
    -* | '') mode=quick ;;
    *)
        echo "usage: $0 [quick|full] [criterion arguments...]" >&2
        exit 2
        ;;
esac

benches=${BENCHES:-throughput latency runtime sieve}
criterion_args=()
if [ "$mode" = quick ]; then
    export SHMPIPE_BENCH_QUICK=1
    criterion_args=(--warm-up-time 0.5 --measurement-time 1 --sample-size 10)
else
    unset SHMPIPE_BENCH_QUICK
fi

bench=bench
if [ "${LINK:-static}" = static ] && [ "$(uname -m)" = x86_64 ]; then
    bench=bench-static # .cargo/config.toml
fi

# Build everything first, so compile time is not mixed with the runs.
build=()
for b in $benches; do build+=(--bench "$b"); done
cargo "$bench" -p shmpipe --no-run "${build[@]}"

start=$(date +%s)
for b in $benches; do
    echo "== $b ($mode)"
    cargo "$bench" -p shmpipe --bench "$b" -- "${criterion_args[@]}" "$@"
done
echo "== done in $(($(date +%s) - start)) s ($mode)"

left=$(ls -1 /dev/shm 2>/dev/null | grep -E "^shmpipe-bench-" || true)
if [ -n "$left" ]; then
    echo "segments left in /dev/shm by the benchmarks:" >&2
    echo "$left" | sed 's/^/    /' >&2
    exit 1
fi
