#!/usr/bin/env bash
# Interleaved A/B of two sieve commands: medians of wall and CPU, and their paired ratios.
#
#   scripts/ab-sieve.sh ROUNDS "COMMAND A" "COMMAND B"
#
#   scripts/ab-sieve.sh 21 "/tmp/sieve-before --max-number 100000 --stage-size 100 --queue-depth 4096" \
#                          "/tmp/sieve-after  --max-number 100000 --stage-size 100 --queue-depth 4096"
#   scripts/ab-sieve.sh 9 "$S --max-number 1000000 --stage-size 100 --queue-depth 8192" \
#                         "$S --max-number 1000000 --stage-size 100 --mode sequential"
#
# Each command gets `--json`; A and B alternate, so a machine that drifts over the batch drifts
# under both. Each run's JSON goes to a file and is parsed after the batch: a `| python3` on a
# run's own stdout starts the interpreter on the same cores during the run (it added 15-25 ms to
# every N=10^5 run here).
set -euo pipefail
if [ $# -ne 3 ]; then
    echo "usage: $0 ROUNDS \"COMMAND A\" \"COMMAND B\"" >&2
    exit 2
fi
rounds=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for i in $(seq 1 "$rounds"); do
    $2 --json >"$dir/A-$i.json"
    $3 --json >"$dir/B-$i.json"
done
python3 - "$rounds" "$dir" <<'PY'
import json, statistics, sys
rounds, folder = int(sys.argv[1]), sys.argv[2]
runs = {side: [json.load(open(f"{folder}/{side}-{i}.json")) for i in range(1, rounds + 1)] for side in "AB"}
for side, rs in runs.items():
    wall = [r["wall_s"] * 1000 for r in rs]
    cpu = [r["cpu_s"] * 1000 for r in rs]
    print(f"{side}: wall median {statistics.median(wall):.1f} ms (min {min(wall):.1f}, max {max(wall):.1f}), "
          f"CPU median {statistics.median(cpu):.1f} ms")
for key, label in (("wall_s", "wall"), ("cpu_s", "CPU")):
    ratios = [a[key] / b[key] for a, b in zip(runs["A"], runs["B"])]
    print(f"A/B {label}, paired: median {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
PY
