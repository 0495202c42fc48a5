#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ (README "Fuzzing"): configures build/fuzz with clang, builds the
# targets, and runs each for the given time over a copy of its seed corpus, so tests/fuzz/corpus/ stays as
# committed. Exits non-zero when any target finds a crash, a sanitizer report, a leak or a hang.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]      e.g. scripts/fuzz.sh 1800 config scram
#
# Targets: startup frontend backend error_response scram config sql_command backend_login (default: all).
# FUZZ_JOBS=N runs N targets at once (default 1; each takes one core); FUZZ_BUILD_DIR picks another tree than
# build/fuzz (say, to keep long runs going while you rebuild). Reproduce a finding with
# build/fuzz/tests/fuzz/<target>_fuzz <file>.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

all_targets=(startup frontend backend error_response scram config sql_command backend_login)
seconds=${1:-60}
shift || true
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=("${all_targets[@]}")
parallel=${FUZZ_JOBS:-1}
build=${FUZZ_BUILD_DIR:-build/fuzz}

if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "fuzz.sh: seconds-per-target must be a positive number, got '$seconds'" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  if [[ " ${all_targets[*]} " != *" $t "* ]]; then
    echo "fuzz.sh: unknown target '$t' (have: ${all_targets[*]})" >&2
    exit 2
  fi
done
if ! command -v clang++ > /dev/null; then
  echo "fuzz.sh: clang++ not found; run scripts/deps.sh" >&2
  exit 2
fi

# The longest input worth trying per target: a whole startup packet (kMaxStartupPacket is 10 KiB) plus a
# following one; a few dozen messages; the largest shipped config with room to grow; a whole login exchange.
max_len() {
  case $1 in
    startup) echo 12288 ;;
    frontend | backend) echo 4096 ;;
    error_response | scram | sql_command) echo 1024 ;;
    config) echo 8192 ;;
    backend_login) echo 2048 ;;
  esac
}

started=$SECONDS
echo "==> configure $build (clang, POOLER_FUZZ=ON)"
mkdir -p "$(dirname "$build")"
CC=clang CXX=clang++ cmake -S . -B "$build" -DPOOLER_FUZZ=ON > "$build.configure.log" 2>&1 || {
  cat "$build.configure.log" >&2
  exit 1
}
echo "==> build ${targets[*]}"
cmake --build "$build" -j"${JOBS:-2}" --target "${targets[@]/%/_fuzz}"
echo "==> built after $((SECONDS - started)) s"

run_one() {
  local t=$1
  local run=$build/runs/$t
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$run/corpus/"
  local dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # -timeout: an input that takes this long is a hang. Leaks count (libFuzzer's default), as do UBSan reports
  # (the tree aborts on them).
  if "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=25 \
      -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$run/artifacts/" "${dict[@]}" "$run/corpus" \
      > "$run/log" 2>&1; then
    echo "ok" > "$run/status"
  else
    echo "failed" > "$run/status"
  fi
}

summary() {
  local t=$1 run=$build/runs/$1
  local done_line execs
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$run/log" | tail -1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$run/log" | awk '{print $2}' || true)
  printf '%-15s %-6s execs=%s %s\n' "$t" "$(cat "$run/status")" "${execs:-?}" \
    "$(echo "$done_line" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || echo '(no DONE line)')"
}

echo "==> run each target for ${seconds} s (${parallel} at a time)"
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
done
wait

failed=()
for t in "${targets[@]}"; do
  summary "$t"
  if [ "$(cat "$build/runs/$t/status")" != ok ]; then
    failed+=("$t")
    echo "---- $t: last lines of $build/runs/$t/log" >&2
    tail -n 60 "$build/runs/$t/log" >&2
    echo "---- findings in $build/runs/$t/artifacts/: $(ls "$build/runs/$t/artifacts" | tr '\n' ' ')" >&2
  fi
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (after $((SECONDS - started)) s)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran ${seconds} s each without a finding (after $((SECONDS - started)) s)"
