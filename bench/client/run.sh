#!/usr/bin/env bash
# Runs client_bench against a throwaway PostgreSQL 15 (tests/harness/pg_cluster.sh). Build first, Release:
#   cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release && cmake --build build/release --target client_bench -j2
# Usage: bench/client/run.sh [build-dir=build/release] [seconds-per-round] [rounds]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
source "$root/tests/harness/pg_cluster.sh"
pg_cluster_start
"$build/bench/client/client_bench" "postgresql://app:secret@127.0.0.1:$PG_PORT/app" "${2:-2}" "${3:-5}"
