#!/usr/bin/env bash
# Fails if anything of ours is left behind: segments in /dev/shm or processes of the project.
set -u
status=0
segments=$(ls -1 /dev/shm 2>/dev/null | grep -E '^(shmpipe\.|shmq-|shmpipe-doc-|shmpipe-bench-)' || true)
if [ -n "$segments" ]; then
    echo "segments left in /dev/shm:"; echo "$segments" | sed 's/^/    /'; status=1
fi
procs=$(ps -eo pid=,comm= | awk '$2=="sieve"||$2=="shmq"' || true)
if [ -n "$procs" ]; then
    echo "processes left running:"; echo "$procs" | sed 's/^/    /'; status=1
fi
[ $status -eq 0 ] && echo "nothing left behind"
exit $status
