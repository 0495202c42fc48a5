#!/usr/bin/env bash
# bench/idle_clients.sh: daemon memory per idle client. Opens N logged-in idle clients (bench/idle_clients.py)
# to pooler and then to PgBouncer, and prints how much each daemon's RSS grew per client.
#
# Usage: bench/idle_clients.sh [N]   (N defaults to IDLE_CLIENTS or 10000). POOLER_BIN, BENCH_KEEP as in run.sh.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-${IDLE_CLIENTS:-10000}}
SETTLE=${IDLE_SETTLE:-2}
LOGIN_TIMEOUT=${IDLE_LOGIN_TIMEOUT:-600}
RESULTS=$BENCH_ROOT/bench/results/idle_latest.md
BENCH_EXTRA_PIDS=
declare -A HELD BEFORE WITH AFTER PER LOGIN_S NOTE

# measure NAME PORT PID: RSS of PID before, with N idle clients held, and after they left.
measure() {
  local name=$1 port=$2 pid=$3 out opener line
  # One real transaction first, so the pool has its server connection and cached parameters: the growth we
  # measure is then the clients', not the first server connection's.
  PGPASSWORD=$BENCH_PASSWORD psql -X -q -A -t -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -d "$BENCH_DB" \
    -c "SELECT 1" >/dev/null || bench_die "psql through $name failed"
  sleep "$SETTLE"
  BEFORE[$name]=$(bench_rss_kib "$pid")

  out=$BENCH_DIR/idle.$name.out
  python3 "$BENCH_ROOT/bench/idle_clients.py" --port "$port" --user "$BENCH_USER" --password "$BENCH_PASSWORD" \
    --database "$BENCH_DB" -n "$N" >"$out" 2>"$BENCH_DIR/idle.$name.err" &
  opener=$!
  BENCH_EXTRA_PIDS=$opener
  local deadline=$((SECONDS + LOGIN_TIMEOUT))
  until line=$(grep -m1 '^logged_in=' "$out"); do
    if ! kill -0 "$opener" 2>/dev/null; then
      cat "$BENCH_DIR/idle.$name.err" >&2
      bench_die "idle_clients.py against $name exited early"
    fi
    [ "$SECONDS" -lt "$deadline" ] || bench_die "$name: logins not finished after $LOGIN_TIMEOUT s"
    sleep 0.2
  done
  sleep "$SETTLE"
  if ! kill -0 "$pid" 2>/dev/null; then bench_die "$name exited while holding the clients"; fi
  WITH[$name]=$(bench_rss_kib "$pid")
  HELD[$name]=$(sed -E 's/.*logged_in=([0-9]+).*/\1/' <<<"$line")
  LOGIN_S[$name]=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$line")
  if ! grep -q 'failed=0' <<<"$line"; then
    NOTE[$name]="$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line") logins failed: $(head -n 1 "$BENCH_DIR/idle.$name.err")"
  fi
  PER[$name]=$(awk -v a="${WITH[$name]}" -v b="${BEFORE[$name]}" -v n="${HELD[$name]}" \
    'BEGIN { if (n > 0) printf "%.2f", (a - b) / n; else print "-" }')

  kill -TERM "$opener" 2>/dev/null || true
  local rc=0
  wait "$opener" || rc=$?
  BENCH_EXTRA_PIDS=
  if [ "$rc" != 0 ] && [ -z "${NOTE[$name]:-}" ]; then
    NOTE[$name]="opener exit $rc: $(grep -v '^$' "$BENCH_DIR/idle.$name.err" | head -n 1)"
  fi
  sleep "$SETTLE"
  AFTER[$name]=$(bench_rss_kib "$pid")
}

main() {
  bench_install_traps
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  local nofile
  nofile=$(ulimit -n)
  # The opener and the daemon each need one descriptor per client, plus some.
  [ "$nofile" -ge $((N + 100)) ] || bench_die "ulimit -n is $nofile (hard limit $(ulimit -Hn)); $N clients need $((N + 100))"

  mkdir -p "$(dirname "$RESULTS")"
  bench_make_dir
  echo "bench: starting PostgreSQL, pooler and pgbouncer (md5 auth, max_client_conn 20000)" >&2
  bench_start_cluster
  bench_start_pooler 20
  bench_start_pgbouncer 20

  echo "bench: $N idle clients to pooler" >&2
  measure pooler "$POOLER_PORT" "$POOLER_PID"
  echo "bench: $N idle clients to pgbouncer" >&2
  measure pgbouncer "$PGBOUNCER_PORT" "$PGBOUNCER_PID"

  local rows name
  rows="daemon|idle clients held|RSS before KiB|RSS with clients KiB|KiB per idle client|RSS after they left KiB|login time s"
  for name in pooler pgbouncer; do
    rows+=$'\n'"$name|${HELD[$name]}|${BEFORE[$name]}|${WITH[$name]}|${PER[$name]}|${AFTER[$name]}|${LOGIN_S[$name]}"
  done
  {
    echo "# Idle client memory"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); pooler binary ${POOLER_BIN#"$BENCH_ROOT"/}; $("$PGBOUNCER_BIN" --version | head -n 1)."
    echo "$N clients logged in with md5 and left idle; RSS is VmRSS from /proc/PID/status."
    echo
    md_table <<<"$rows"
    for name in pooler pgbouncer; do
      if [ -n "${NOTE[$name]:-}" ]; then echo; echo "WARNING: $name: ${NOTE[$name]}"; fi
    done
  } >"$RESULTS.tmp"
  mv "$RESULTS.tmp" "$RESULTS"
  cat "$RESULTS"
  echo
  echo "(written to ${RESULTS#"$BENCH_ROOT"/})"
  echo
  bench_log_summary "$BENCH_DIR/pooler.log" 10 pooler
  bench_log_summary "$BENCH_DIR/pgbouncer.log" 10 pgbouncer
}

main "$@"
