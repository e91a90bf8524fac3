#!/usr/bin/env bash
# make bench: runs every benchmark in bench/ and prints its figures.
# Benchmarks print numbers; they assert nothing (targets are judged by
# people reading the figures, see doc/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/*.py; do
    echo "=== $b"
    .venv/bin/python "$b" "$@"
done
