#!/usr/bin/env bash
# Cleanup under repetition: SIGKILL a running sieve root, start a new run, over and over. Each
# new run removes the stale segments of dead roots (runtime::remove_stale at start). At the end
# several runs start at once (racing to clean the same stale segments: exactly one may unlink
# each, the others must not fail), and /dev/shm must hold nothing of ours once they finish.
#
#   scripts/kill-root-loop.sh [ROUNDS=1000]
set -u
cd "$(dirname "$0")/.."
rounds=${1:-1000}
cargo build --release -q -p sieve || exit 1
sieve=target/release/sieve
ours() { ls /dev/shm | grep -c '^shmpipe\.' || true; }

most=0
for round in $(seq 1 "$rounds"); do
    "$sieve" --max-number 100000000 --stage-size 30 --quiet >/dev/null 2>&1 &
    root=$!
    sleep "0.0$(( RANDOM % 9 + 1 ))"
    kill -9 "$root" 2>/dev/null
    wait "$root" 2>/dev/null
    n=$(ours)
    [ "$n" -gt "$most" ] && most=$n
done
echo "after $rounds killed roots: at most $most segments of ours were in /dev/shm at once (one dead run's worth, cleaned by the next run)"
# Let the last run's stages finish dying (pdeathsig) before the cleaners race.
sleep 1
pids=()
for i in 1 2 3 4; do
    "$sieve" --max-number 20000 --stage-size 10 --quiet >/dev/null 2>/tmp/kill-root-loop.$i.err &
    pids+=($!)
done
failed=0
for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}" || { echo "concurrent run $i failed:"; cat /tmp/kill-root-loop.$i.err; failed=1; }
done
left=$(ours)
alive=$(ps -eo stat=,comm= | awk '$2=="sieve" && $1 !~ /^Z/' | wc -l)
echo "after 4 concurrent runs: $left segments of ours in /dev/shm, $alive sieve processes running"
[ "$failed" -eq 0 ] && [ "$left" -eq 0 ] && [ "$alive" -eq 0 ]
