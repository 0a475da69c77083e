#!/usr/bin/env bash
# Builds the sieve as `cargo sieve` ships it and prints the path of the executable: static on
# x86_64 (.cargo/config.toml says why: every stage is a fork, and a fork costs in proportion
# to the mappings of the process it is forked from), a plain release build elsewhere or with
# LINK=dynamic. The scripts that run the sieve many times use it, so they test what ships.
#
#   sieve=$(scripts/built-sieve.sh) || exit 1
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo names the executable it built (wherever CARGO_TARGET_DIR or a `build.target-dir` in any
# cargo config puts it) in its JSON messages; diagnostics still go to stderr as usual.
if [ "${LINK:-static}" = static ] && [ "$(uname -m)" = x86_64 ]; then
    build=(build-static)
else
    build=(build)
fi
exe=$(cargo "${build[@]}" --release -q -p sieve --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    echo "built-sieve.sh: cargo built no sieve executable" >&2
    exit 1
fi
echo "$exe"
