#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run calls exactly this): installs dependencies, builds
# a Release tree and an ASan+UBSan tree, and runs every test in both. Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=${JOBS:-$(nproc)}
started=$SECONDS

bash scripts/deps.sh

failed=()

run_tree() {
  local name=$1
  shift
  echo "==> configure build/$name ($*)"
  cmake -S . -B "build/$name" "$@"
  echo "==> build build/$name (-j$jobs)"
  cmake --build "build/$name" -j"$jobs"
  echo "==> test build/$name"
  if ! ctest --test-dir "build/$name" -j"$jobs" --output-on-failure --timeout 300; then
    failed+=("$name")
  fi
  echo "==> build/$name done after $((SECONDS - started)) s"
}

run_tree release -DCMAKE_BUILD_TYPE=Release

# Sanitizers: leaks count as failures, and the first report aborts with a stack trace.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_tree asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLER_SANITIZE=ON
unset ASAN_OPTIONS UBSAN_OPTIONS

# libFuzzer targets (tests/fuzz/, clang): each for FUZZ_SECONDS (default 60; 0 skips), two at a time.
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  echo "==> fuzz each target for ${FUZZ_SECONDS:-60} s"
  FUZZ_JOBS=${FUZZ_JOBS:-2} JOBS=$jobs bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}" || failed+=(fuzz)
  echo "==> fuzz done after $((SECONDS - started)) s"
fi

if [ "${#failed[@]}" -ne 0 ]; then
  echo "test.sh: FAILED in: ${failed[*]} (after $((SECONDS - started)) s)" >&2
  exit 1
fi
echo "test.sh: all tests passed in release and asan (after $((SECONDS - started)) s)"
