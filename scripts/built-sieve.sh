#!/usr/bin/env bash
# Builds the sieve as `cargo sieve` ships it and prints the path of the executable: static on
# x86_64 (.cargo/config.toml says why: every stage is a fork, and a fork costs in proportion
# to the mappings of the process it is forked from), a plain release build elsewhere or with
# LINK=dynamic. The scripts that run the sieve many times use it, so they test what ships.
#
#   sieve=$(scripts/built-sieve.sh) || exit 1
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
if [ "${LINK:-static}" = static ] && [ "$(uname -m)" = x86_64 ]; then
    cargo build-static --release -q -p sieve >&2
    echo "$target/x86_64-unknown-linux-gnu/release/sieve"
else
    cargo build --release -q -p sieve >&2
    echo "$target/release/sieve"
fi
