#!/usr/bin/env bash
# Cleanup under repetition: SIGKILL a running sieve root, start a new run, over and over. The
# killed root's fork server removes its run's segments; each new run also removes the stale
# segments of dead roots (runtime::remove_stale at start), which catches any it missed. At the end
# several runs start at once (racing to clean the same stale segments: exactly one may unlink
# each, the others must not fail), and /dev/shm must hold nothing of ours once they finish.
#
# Meanwhile a long-lived run (niced, so the loop keeps the CPU) must be left alone by all those
# cleaners, and its root's and fork server's open fds and mappings must stay flat; so must the
# killed roots' (sampled just before each kill: no count may grow with the number of dead runs
# cleaned before).
#
#   scripts/kill-root-loop.sh [ROUNDS=1000]
set -u
cd "$(dirname "$0")/.."
rounds=${1:-1000}
sieve=$(scripts/built-sieve.sh) || exit 1
ours() { ls /dev/shm | grep -c '^shmpipe\.' || true; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
maps() { wc -l <"/proc/$1/maps" 2>/dev/null || echo 0; }
server_of() { ps -o pid= --ppid "$1" | head -1 | tr -d ' '; }

# The long-lived run: about a minute of work per stage, few stages.
nice -n 19 "$sieve" --max-number 4000000000 --stage-size 100000 --queue-depth 4096 --quiet >/dev/null 2>&1 &
keeper=$!
sleep 1
keeper_server=$(server_of "$keeper")
keeper_segments=$(ls /dev/shm | grep -c "^shmpipe\.$keeper\." || true)
before="$(fds "$keeper") $(maps "$keeper") $(fds "$keeper_server") $(maps "$keeper_server")"

most=0
first_fds="" first_maps="" last_fds="" last_maps=""
for round in $(seq 1 "$rounds"); do
    "$sieve" --max-number 100000000 --stage-size 1000 --quiet >/dev/null 2>&1 &
    root=$!
    sleep "0.0$(( RANDOM % 9 + 1 ))"
    sample="$(fds "$root") $(maps "$root")"
    kill -9 "$root" 2>/dev/null
    wait "$root" 2>/dev/null
    n=$(ours)
    [ "$n" -gt "$most" ] && most=$n
    # Roots sampled in the first and the last tenth of the rounds.
    if [ "$round" -le $(( rounds / 10 )) ]; then first_fds+="${sample% *} " first_maps+="${sample#* } "; fi
    if [ "$round" -gt $(( rounds - rounds / 10 )) ]; then last_fds+="${sample% *} " last_maps+="${sample#* } "; fi
done
range() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | sed -n '1p;$p' | paste -sd- -; }
echo "after $rounds killed roots: at most $(( most - keeper_segments )) segments of dead runs were in /dev/shm at once (counted right after each kill: one dead run's worth, which its fork server then removes)"
echo "killed roots just before the kill, first tenth vs last tenth: fds $(range "$first_fds") vs $(range "$last_fds"), mappings $(range "$first_maps") vs $(range "$last_maps")"
grown=0
max() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | tail -1; }
[ "$(max "$last_fds")" -gt "$(max "$first_fds")" ] && grown=1
[ "$(max "$last_maps")" -gt "$(max "$first_maps")" ] && grown=1

after="$(fds "$keeper") $(maps "$keeper") $(fds "$keeper_server") $(maps "$keeper_server")"
keeper_now=$(ls /dev/shm | grep -c "^shmpipe\.$keeper\." || true)
echo "long-lived run (root $keeper, server $keeper_server): fds/mappings root, server before $before, after $after; its segments $keeper_segments before, $keeper_now after"
untouched=1
[ "$before" = "$after" ] || untouched=0
[ "$keeper_now" -ge "$keeper_segments" ] && kill -0 "$keeper" 2>/dev/null || untouched=0
# SIGTERM, not SIGINT: a job started with & from a script ignores SIGINT, and the sieve keeps
# ignoring what it was started ignoring.
kill -TERM "$keeper"
wait "$keeper"
keeper_rc=$?
echo "long-lived run interrupted: exit $keeper_rc (143 expected)"
[ "$keeper_rc" -eq 143 ] || untouched=0

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
[ "$failed" -eq 0 ] && [ "$left" -eq 0 ] && [ "$alive" -eq 0 ] && [ "$grown" -eq 0 ] && [ "$untouched" -eq 1 ]
