#!/usr/bin/env bash
# Fault injection: SIGKILLs a random process of a running sieve at a random moment, many times,
# and checks each time that the run ends within a bound with a clear error, that no process of
# the run is left, and that no segment of the run is left.
#
#   scripts/fault-inject.sh [ROUNDS=100]
#
# Victims, chosen at random each round: the source (the server's first child), the first stage,
# a middle stage, the last stage, or the fork server itself; moments are random delays, so the
# victim may be asleep on full, asleep on empty, mid-chunk, or spawning. The root's own death is
# covered by scripts/kill-root-loop.sh.
set -u
cd "$(dirname "$0")/.."
rounds=${1:-100}
sieve=$(scripts/built-sieve.sh) || exit 1

children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

ok=0; bad=0; declare -A victims
for round in $(seq 1 "$rounds"); do
    depth=$(( RANDOM % 2 == 0 ? 10 : 1024 ))
    "$sieve" --max-number 50000000 --stage-size 500 --queue-depth "$depth" --quiet >/dev/null 2>/tmp/fault-inject.err &
    root=$!
    sleep "0.$(( RANDOM % 9 + 1 ))"
    server=$(children_of "$root" | head -1)
    stages=$(children_of "$server")
    n=$(echo "$stages" | grep -c . || true)
    kind=$(( RANDOM % 5 ))
    case $kind in
        0) victim=$(echo "$stages" | head -1); what=source ;;
        1) victim=$(echo "$stages" | sed -n 2p); what=first-stage ;;
        2) victim=$(echo "$stages" | sed -n "$(( n / 2 + 1 ))p"); what=middle-stage ;;
        3) victim=$(echo "$stages" | tail -1); what=last-stage ;;
        4) victim=$server; what=fork-server ;;
    esac
    if [ -z "$victim" ]; then kill -9 "$root" 2>/dev/null; wait "$root" 2>/dev/null; continue; fi
    victims[$what]=$(( ${victims[$what]:-0} + 1 ))
    start=$(date +%s%N)
    kill -9 "$victim" 2>/dev/null
    # The run must end by itself; give it 10 s before calling it a hang.
    for _ in $(seq 1 1000); do kill -0 "$root" 2>/dev/null || break; sleep 0.01; done
    if kill -0 "$root" 2>/dev/null; then
        echo "round $round: $what killed, the run did not end within 10 s"; bad=$((bad + 1))
        kill -9 "$root"; wait "$root" 2>/dev/null; continue
    fi
    wait "$root"; status=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    # Zombies re-parented to pid 1 are init's to reap (a container's init may not): only a
    # process that can still run counts as left behind.
    left_procs=$(ps -eo pid=,stat=,comm= | awk '$3=="sieve" && $2 !~ /^Z/' | wc -l)
    if [ "$left_procs" -ne 0 ]; then ps -eo pid=,ppid=,stat=,comm= | awk '$4=="sieve"' | awk '{print $2, $3}' | sort | uniq -c | head -5; fi
    left_segs=$(ls /dev/shm | grep -c "^shmpipe\.$root\." || true)
    lines=$(wc -l < /tmp/fault-inject.err)
    if [ "$status" -ne 1 ] || [ "$left_procs" -ne 0 ] || [ "$left_segs" -ne 0 ] || [ "$lines" -ne 1 ]; then
        echo "round $round: $what killed: exit $status, $left_procs processes and $left_segs segments left, $lines stderr lines"
        cat /tmp/fault-inject.err; bad=$((bad + 1))
    else
        ok=$((ok + 1)); slowest=$(( ms > ${slowest:-0} ? ms : ${slowest:-0} ))
    fi
done
echo "victims: $(for k in "${!victims[@]}"; do printf '%s=%s ' "$k" "${victims[$k]}"; done)"
echo "$ok passed, $bad failed; slowest end after the kill: ${slowest:-0} ms"
[ "$bad" -eq 0 ]
