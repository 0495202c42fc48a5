#!/usr/bin/env bash
# bench/run.sh: pgbench through direct PostgreSQL, through pooler and through PgBouncer, in one run on one
# throwaway cluster; prints TPS and latency per scenario with the ratios, and writes bench/results/latest.md.
#
# Environment: BENCH_SECONDS (15) per pgbench run, BENCH_WARMUP (2) seconds of warm-up per target,
# BENCH_SCALE (10) for pgbench -i -s, BENCH_POOL_SIZE (20), POOLER_BIN (build/release/pooler),
# BENCH_KEEP=1 keeps the scratch directory with configs and logs, BENCH_QUIET_LOAD=0.5 first waits (up to
# 10 minutes) for the 1-minute load average to fall below that, for a shared machine, BENCH_MAX_PREPARED (100)
# is the pooler's max_prepared_statements (0 = off) for every row; the "-M prepared" row needs it, as
# PgBouncer 1.18 has no such feature: its failures are counted in the table, not treated as fatal.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-15}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_SCALE=${BENCH_SCALE:-10}
BENCH_POOL_SIZE=${BENCH_POOL_SIZE:-20}
BENCH_MAX_PREPARED=${BENCH_MAX_PREPARED:-100}
PGBENCH=${PGBENCH:-$PG_BIN/pgbench}
RESULTS=$BENCH_ROOT/bench/results/latest.md
CLK_TCK=$(getconf CLK_TCK)

TARGETS=(direct pooler pgbouncer)
SCENARIOS=(sel_simple sel_ext sel_prep tpcb sel_connect)
declare -A SCEN_NAME=(
  [sel_simple]="select-only simple -c 50"
  [sel_ext]="select-only extended -c 50"
  [sel_prep]="select-only prepared -c 50"
  [tpcb]="TPC-B-like -c 20"
  [sel_connect]="select-only -C -c 20"
)
declare -A SCEN_ARGS=(
  [sel_simple]="-S -M simple -c 50 -j 2"
  [sel_ext]="-S -M extended -c 50 -j 2"
  [sel_prep]="-S -M prepared -c 50 -j 2"
  [tpcb]="-c 20 -j 2"
  [sel_connect]="-S -C -c 20 -j 2"
)
declare -A TPS LAT FAILED PROCESSED PROBLEM CPU_US ABORTED ERRORS CLIENTS

target_port() {
  case $1 in
    direct) echo "$PG_PORT" ;;
    pooler) echo "$POOLER_PORT" ;;
    pgbouncer) echo "$PGBOUNCER_PORT" ;;
  esac
}

target_pid() {
  case $1 in
    pooler) echo "$POOLER_PID" ;;
    pgbouncer) echo "$PGBOUNCER_PID" ;;
    *) echo "" ;;
  esac
}

# utime + stime of process $1, in clock ticks.
cpu_ticks() {
  local line rest
  read -r line <"/proc/$1/stat" || { echo 0; return; }
  rest=${line##*) }
  # After "(comm) ": state is field 3, so utime (14) and stime (15) are the 12th and 13th words here.
  awk '{print $12 + $13}' <<<"$rest"
}

# What pgbench itself does before a built-in run (we pass -n so that no run vacuums through a proxy).
reset_tables() {
  local sql
  for sql in "VACUUM pgbench_branches" "VACUUM pgbench_tellers" "TRUNCATE pgbench_history"; do
    pg_cluster_psql "$sql" "$BENCH_DB" >/dev/null
  done
}

# run_pgbench TARGET SECONDS ARGS...: runs pgbench; its stdout and stderr go to $BENCH_DIR/last.{out,err}.
run_pgbench() {
  local target=$1 secs=$2
  shift 2
  PGPASSWORD=$BENCH_PASSWORD "$PGBENCH" -n -h 127.0.0.1 -p "$(target_port "$target")" -U "$BENCH_USER" \
    -T "$secs" "$@" "$BENCH_DB" >"$BENCH_DIR/last.out" 2>"$BENCH_DIR/last.err"
}

# measure SCENARIO TARGET: one timed run; fills TPS, LAT, FAILED, PROCESSED, ABORTED, ERRORS, CLIENTS, PROBLEM
# and CPU_US.
measure() {
  local scen=$1 target=$2 key="$1,$2" pid rc=0 t0=0 t1=0 out tps lat failed processed err aborted errors clients
  pid=$(target_pid "$target")
  if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
    PROBLEM[$key]="$target is not running"
    return
  fi
  reset_tables
  [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086 # SCEN_ARGS are word lists on purpose
  run_pgbench "$target" "$BENCH_SECONDS" ${SCEN_ARGS[$scen]} || rc=$?
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && t1=$(cpu_ticks "$pid")
  cp "$BENCH_DIR/last.out" "$BENCH_DIR/$scen.$target.out"
  cp "$BENCH_DIR/last.err" "$BENCH_DIR/$scen.$target.err"

  out=$BENCH_DIR/last.out
  tps=$(awk '/^tps = / {print $3; exit}' "$out")
  lat=$(awk '/^latency average = / {print $4; exit}' "$out")
  failed=$(awk '/^number of failed transactions: / {print $5; exit}' "$out")
  processed=$(awk '/^number of transactions actually processed: / {split($6, a, "/"); print a[1]; exit}' "$out")
  # Errors pgbench only logs (a failed Parse in -M prepared) and clients it gave up on ("aborted in command").
  aborted=$(grep -c 'aborted in command' "$BENCH_DIR/last.err" || true)
  errors=$(grep -c 'ERROR' "$BENCH_DIR/last.err" || true)
  clients=$(awk '/^number of clients: / {print $4; exit}' "$out")
  TPS[$key]=${tps:-}
  LAT[$key]=${lat:-}
  FAILED[$key]=${failed:-}
  PROCESSED[$key]=${processed:-}
  ABORTED[$key]=$aborted
  ERRORS[$key]=$errors
  CLIENTS[$key]=${clients:-?}

  local problems=()
  if [ "$rc" != 0 ]; then problems+=("pgbench exit $rc"); fi
  if [ -z "$tps" ]; then problems+=("no tps in pgbench output"); fi
  if [ -z "$failed" ]; then
    problems+=("no failed-transactions line in pgbench output")
  elif [ "$failed" != 0 ]; then
    problems+=("$failed failed transactions")
  fi
  if [ "$aborted" != 0 ]; then
    problems+=("$aborted of ${clients:-?} clients aborted (after ${processed:-?} transactions)")
    # pgbench's tps then covers only the time before the clients gave up: not comparable, so not shown.
    TPS[$key]=""
    LAT[$key]=""
  fi
  if [ "$errors" != 0 ]; then problems+=("$errors ERROR lines from pgbench"); fi
  if [ "${#problems[@]}" -gt 0 ]; then
    err=$(grep -m1 -iE 'error|abort|fatal' "$BENCH_DIR/last.err" || head -n 1 "$BENCH_DIR/last.err" || true)
    PROBLEM[$key]="$(IFS=';'; echo "${problems[*]}")${err:+: ${err:0:200}}"
  fi
  if [ -n "$pid" ] && [ "$t1" != 0 ] && [ -n "${processed:-}" ] && [ "$processed" -gt 0 ] && [ "$aborted" = 0 ]; then
    CPU_US[$key]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$processed" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
  fi
}

ratio() {
  if [ -n "$1" ] && [ -n "$2" ]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
  else
    echo "-"
  fi
}

fmt_tps() { if [ -n "$1" ]; then awk -v v="$1" 'BEGIN {printf "%.0f", v}'; else echo "-"; fi; }
fmt_lat() { if [ -n "$1" ]; then awk -v v="$1" 'BEGIN {printf "%.3f", v}'; else echo "-"; fi; }

report() {
  local scen t key rows cpu_rows
  rows="scenario|direct TPS|direct lat ms|pooler TPS|pooler lat ms|pgbouncer TPS|pgbouncer lat ms|pooler/pgbouncer|pooler/direct"
  for scen in "${SCENARIOS[@]}"; do
    rows+=$'\n'"${SCEN_NAME[$scen]}"
    for t in "${TARGETS[@]}"; do
      key="$scen,$t"
      rows+="|$(fmt_tps "${TPS[$key]:-}")|$(fmt_lat "${LAT[$key]:-}")"
    done
    rows+="|$(ratio "${TPS[$scen,pooler]:-}" "${TPS[$scen,pgbouncer]:-}")|$(ratio "${TPS[$scen,pooler]:-}" "${TPS[$scen,direct]:-}")"
  done
  # A warning row per scenario with a failed run: the short reason under the target, details below the table.
  local cells details=""
  for scen in "${SCENARIOS[@]}"; do
    cells=""
    for t in "${TARGETS[@]}"; do
      key="$scen,$t"
      if [ -n "${PROBLEM[$key]:-}" ]; then
        if [ "${ABORTED[$key]:-0}" != 0 ]; then
          cells+="|ABORTED ${ABORTED[$key]}/${CLIENTS[$key]} clients after ${PROCESSED[$key]:-?} txns|"
        elif [ -n "${FAILED[$key]:-}" ] && [ "${FAILED[$key]}" != 0 ]; then
          cells+="|FAILED ${FAILED[$key]}|"
        elif [ "${ERRORS[$key]:-0}" != 0 ]; then
          cells+="|${ERRORS[$key]} errors|"
        else
          cells+="|ERROR|"
        fi
        details+="WARNING: ${SCEN_NAME[$scen]} via $t: ${PROBLEM[$key]}"$'\n'
      else
        cells+="|ok|"
      fi
    done
    if [[ $cells == *FAILED* || $cells == *ERROR* || $cells == *ABORTED* || $cells == *errors* ]]; then
      rows+=$'\n'"WARNING ${SCEN_NAME[$scen]}$cells||"
    fi
  done
  cpu_rows="scenario|pooler CPU us/txn|pgbouncer CPU us/txn"
  for scen in "${SCENARIOS[@]}"; do
    cpu_rows+=$'\n'"${SCEN_NAME[$scen]}|${CPU_US[$scen,pooler]:--}|${CPU_US[$scen,pgbouncer]:--}"
  done

  {
    echo "# pooler benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); pooler binary ${POOLER_BIN#"$BENCH_ROOT"/} (built $(date -u -r "$POOLER_BIN" '+%Y-%m-%d %H:%M UTC'), repo at $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')),"
    echo "$(/usr/sbin/pgbouncer --version 2>/dev/null | head -n 1), PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'),"
    echo "$(nproc) CPU(s): $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)."
    echo "pgbench -T $BENCH_SECONDS -s $BENCH_SCALE, md5 auth for all targets, transaction mode, pool size $BENCH_POOL_SIZE in both poolers,"
    echo "pooler max_prepared_statements = $BENCH_MAX_PREPARED (PgBouncer 1.18 has no prepared-statement support in transaction mode)."
    echo "Load average before the run: $LOAD_BEFORE (anything else running shares the cores)."
    echo "TPS and average latency as pgbench reports them; ratios are of TPS."
    echo
    md_table <<<"$rows"
    echo
    if [ -n "$details" ]; then printf '%s\n' "$details"; fi
    echo "Proxy CPU time (user + system) per transaction:"
    echo
    md_table <<<"$cpu_rows"
  } >"$RESULTS.tmp"
  mv "$RESULTS.tmp" "$RESULTS"
  cat "$RESULTS"
  echo
  echo "(written to ${RESULTS#"$BENCH_ROOT"/})"
}

# Restarts the pooler with max_prepared_statements = BENCH_MAX_PREPARED in its database (lib.sh's config
# has none), on the same port, so that -M prepared works through it in transaction mode.
enable_prepared_statements() {
  [ "$BENCH_MAX_PREPARED" -gt 0 ] || return 0
  bench_stop_pid "$POOLER_PID"
  POOLER_PID=
  sed -i "/^\[databases\.$BENCH_DB\]\$/a max_prepared_statements = $BENCH_MAX_PREPARED" "$BENCH_DIR/pooler.toml"
  grep -q "^max_prepared_statements = $BENCH_MAX_PREPARED\$" "$BENCH_DIR/pooler.toml" ||
    bench_die "could not set max_prepared_statements in $BENCH_DIR/pooler.toml"
  "$POOLER_BIN" -c "$BENCH_DIR/pooler.toml" >>"$BENCH_DIR/pooler.log" 2>&1 &
  POOLER_PID=$!
  if ! bench_wait_port "$POOLER_PORT" "$POOLER_PID" pooler; then
    tail -n 30 "$BENCH_DIR/pooler.log" >&2
    exit 1
  fi
}

# Waits up to 10 minutes for the 1-minute load average to drop below BENCH_QUIET_LOAD (if set).
wait_quiet() {
  [ -n "${BENCH_QUIET_LOAD:-}" ] || return 0
  local deadline=$((SECONDS + 600)) load
  while load=$(cut -d' ' -f1 /proc/loadavg) && ! awk -v l="$load" -v m="$BENCH_QUIET_LOAD" 'BEGIN {exit !(l < m)}'; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "bench: load average still $load after 10 minutes; running anyway" >&2
      return 0
    fi
    echo "bench: load average $load, waiting for < $BENCH_QUIET_LOAD" >&2
    sleep 15
  done
}

main() {
  bench_install_traps
  wait_quiet
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  mkdir -p "$(dirname "$RESULTS")"
  bench_make_dir
  echo "bench: starting PostgreSQL, pgbench -i -s $BENCH_SCALE" >&2
  bench_start_cluster
  local max_conn
  max_conn=$(pg_cluster_psql "SHOW max_connections")
  [ "$max_conn" -ge 200 ] || bench_die "max_connections is $max_conn, need >= 200"
  PGPASSWORD=$BENCH_PASSWORD "$PGBENCH" -i -q -s "$BENCH_SCALE" -h 127.0.0.1 -p "$PG_PORT" -U "$BENCH_USER" \
    "$BENCH_DB" >"$BENCH_DIR/init.log" 2>&1 || { cat "$BENCH_DIR/init.log" >&2; bench_die "pgbench -i failed"; }
  pg_cluster_psql "VACUUM ANALYZE" "$BENCH_DB" >/dev/null
  bench_start_pooler "$BENCH_POOL_SIZE"
  enable_prepared_statements
  bench_start_pgbouncer "$BENCH_POOL_SIZE"
  echo "bench: PostgreSQL :$PG_PORT, pooler :$POOLER_PORT (pid $POOLER_PID), pgbouncer :$PGBOUNCER_PORT (pid $PGBOUNCER_PID)" >&2

  local t scen
  # Warm-up: fill the pools and the caches, so the first timed run does not pay for them.
  for t in "${TARGETS[@]}"; do
    run_pgbench "$t" "$BENCH_WARMUP" -S -c 20 -j 2 ||
      echo "bench: warm-up via $t failed: $(head -n 3 "$BENCH_DIR/last.err")" >&2
  done
  for scen in "${SCENARIOS[@]}"; do
    for t in "${TARGETS[@]}"; do
      echo "bench: ${SCEN_NAME[$scen]} via $t (${BENCH_SECONDS}s)" >&2
      measure "$scen" "$t"
    done
  done
  echo >&2
  report
  echo
  bench_log_summary "$BENCH_DIR/pooler.log" 10 pooler
  bench_log_summary "$BENCH_DIR/pgbouncer.log" 10 pgbouncer
  if ! kill -0 "$POOLER_PID" 2>/dev/null; then echo "pooler exited during the run"; fi
  if ! kill -0 "$PGBOUNCER_PID" 2>/dev/null; then echo "pgbouncer exited during the run"; fi
}

main "$@"
