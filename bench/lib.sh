# bench/lib.sh: shared pieces of the benchmark scripts — free ports, starting pooler and PgBouncer in front of
# a pg_cluster.sh cluster, and stopping every process we started. Sourced by run.sh and idle_clients.sh.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POOLER_BIN=${POOLER_BIN:-$BENCH_ROOT/build/release/pooler}
PGBOUNCER_BIN=${PGBOUNCER_BIN:-/usr/sbin/pgbouncer}
BENCH_USER=app
BENCH_PASSWORD=secret
BENCH_DB=app

BENCH_DIR=        # scratch directory (configs, logs), owned by postgres so PgBouncer can write there
POOLER_PID=
POOLER_PORT=
PGBOUNCER_PID=
PGBOUNCER_PORT=

# shellcheck source=../tests/harness/pg_cluster.sh
source "$BENCH_ROOT/tests/harness/pg_cluster.sh"

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_die() {
  echo "bench: $*" >&2
  exit 1
}

# Waits until something accepts TCP connections on 127.0.0.1:$1, while process $2 is alive.
bench_wait_port() {
  local port=$1 pid=$2 name=$3 deadline=$((SECONDS + 20))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: $name exited before listening on port $port" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "bench: $name not listening on port $port after 20 s" >&2
      return 1
    fi
    sleep 0.05
  done
}

bench_make_dir() {
  BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pooler-bench-XXXXXX")
  chmod 755 "$BENCH_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$BENCH_DIR"; fi
}

# Switches the cluster to md5 everywhere: the stored password is an md5 hash and pg_hba asks for md5 on TCP,
# so direct clients, pooler and PgBouncer all authenticate the same way (to the server and to their clients).
bench_use_md5() {
  pg_cluster_psql "SET password_encryption = 'md5'; ALTER ROLE $BENCH_USER PASSWORD '$BENCH_PASSWORD'" >/dev/null
  _pg_as_owner sed -i 's/scram-sha-256/md5/g' "$PG_DATA/pg_hba.conf"
  pg_cluster_psql "SELECT pg_reload_conf()" >/dev/null
  sleep 0.2
  local methods
  methods=$(pg_cluster_psql "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules WHERE type = 'host'")
  [ "$methods" = md5 ] || bench_die "pg_hba host rules use '$methods', expected md5"
}

# bench_start_pooler POOL_SIZE: pooler in transaction mode, md5 auth, in front of the cluster.
bench_start_pooler() {
  local pool_size=$1
  [ -x "$POOLER_BIN" ] || bench_die "no pooler binary at $POOLER_BIN (build it: cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release && cmake --build build/release --target pooler -j2, or set POOLER_BIN)"
  POOLER_PORT=$(bench_free_port)
  cat >"$BENCH_DIR/pooler.toml" <<EOF
[pooler]
listen_addr = "127.0.0.1"
listen_port = $POOLER_PORT
auth_type = "md5"
log_level = "warn"
max_client_conn = 20000

[databases.$BENCH_DB]
host = "127.0.0.1"
port = $PG_PORT
dbname = "$BENCH_DB"
pool_mode = "transaction"
pool_size = $pool_size
max_overflow = 0
pool_timeout = 30.0
pool_pre_ping = true
pre_ping_after = 1.0

[users.$BENCH_USER]
password = "$BENCH_PASSWORD"
EOF
  "$POOLER_BIN" -c "$BENCH_DIR/pooler.toml" >"$BENCH_DIR/pooler.log" 2>&1 &
  POOLER_PID=$!
  if ! bench_wait_port "$POOLER_PORT" "$POOLER_PID" pooler; then
    echo "--- pooler log ($BENCH_DIR/pooler.log) ---" >&2
    tail -n 30 "$BENCH_DIR/pooler.log" >&2
    exit 1
  fi
}

# bench_start_pgbouncer POOL_SIZE: PgBouncer with the equivalent settings, as the postgres user (it refuses root).
bench_start_pgbouncer() {
  local pool_size=$1 md5
  [ -x "$PGBOUNCER_BIN" ] || bench_die "no pgbouncer at $PGBOUNCER_BIN"
  PGBOUNCER_PORT=$(bench_free_port)
  md5=$(printf '%s%s' "$BENCH_PASSWORD" "$BENCH_USER" | md5sum | cut -d' ' -f1)
  printf '"%s" "md5%s"\n' "$BENCH_USER" "$md5" >"$BENCH_DIR/userlist.txt"
  # Connection logging is off: the pooler at log_level warn logs nothing per connection either, and with
  # pgbench -C a log line per login and logout would be PgBouncer's handicap, not its design.
  cat >"$BENCH_DIR/pgbouncer.ini" <<EOF
[databases]
$BENCH_DB = host=127.0.0.1 port=$PG_PORT dbname=$BENCH_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = md5
auth_file = $BENCH_DIR/userlist.txt
pool_mode = transaction
default_pool_size = $pool_size
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 20000
max_db_connections = 0
server_reset_query =
server_check_delay = 1
logfile = $BENCH_DIR/pgbouncer.log
pidfile = $BENCH_DIR/pgbouncer.pid
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
EOF
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$BENCH_DIR/userlist.txt" "$BENCH_DIR/pgbouncer.ini"
    # setpriv execs, so $! is PgBouncer itself (its RSS is what idle_clients.sh reads).
    setpriv --reuid=postgres --regid=postgres --init-groups "$PGBOUNCER_BIN" "$BENCH_DIR/pgbouncer.ini" \
      >"$BENCH_DIR/pgbouncer.out" 2>&1 &
  else
    "$PGBOUNCER_BIN" "$BENCH_DIR/pgbouncer.ini" >"$BENCH_DIR/pgbouncer.out" 2>&1 &
  fi
  PGBOUNCER_PID=$!
  if ! bench_wait_port "$PGBOUNCER_PORT" "$PGBOUNCER_PID" pgbouncer; then
    echo "--- pgbouncer log ---" >&2
    tail -n 30 "$BENCH_DIR/pgbouncer.out" "$BENCH_DIR/pgbouncer.log" >&2 2>/dev/null
    exit 1
  fi
}

# Stops process $1 (TERM, then KILL after 5 s) and reaps it.
bench_stop_pid() {
  local pid=$1 deadline
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + 5))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Prints up to $2 warning/error lines of log $1 with a count, so oddities show up in the report.
bench_log_summary() {
  local log=$1 max=$2 name=$3 n
  [ -f "$log" ] || return 0
  n=$(grep -ciE 'warn|error|critical|fatal|panic' "$log" || true)
  echo "$name log: $n warning/error line(s)"
  if [ "$n" -gt 0 ]; then grep -iE 'warn|error|critical|fatal|panic' "$log" | head -n "$max" | sed 's/^/  /'; fi
}

# Kills everything we started. Extra PIDs (pgbench, the idle-client opener) come in BENCH_EXTRA_PIDS.
bench_cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in ${BENCH_EXTRA_PIDS:-}; do bench_stop_pid "$pid"; done
  bench_stop_pid "$POOLER_PID"
  POOLER_PID=
  bench_stop_pid "$PGBOUNCER_PID"
  PGBOUNCER_PID=
  pg_cluster_cleanup
  if [ -n "$BENCH_DIR" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; }; then
      echo "bench: logs and configs kept in $BENCH_DIR" >&2
    else
      rm -rf "$BENCH_DIR"
    fi
  fi
  exit "$rc"
}

# Installs the traps: cleanup on any exit, and Ctrl-C / TERM turn into an exit so that cleanup runs.
bench_install_traps() {
  # pg_cluster.sh would install its own EXIT trap; ours calls pg_cluster_cleanup instead.
  PG_CLUSTER_KEEP=1
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bench_start_cluster: a throwaway PostgreSQL with md5 auth.
bench_start_cluster() {
  pg_cluster_start >/dev/null || bench_die "PostgreSQL did not start"
  bench_use_md5
}

# VmRSS of process $1 in KiB.
bench_rss_kib() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# Prints rows of '|'-separated cells as an aligned Markdown table (first row is the header).
md_table() {
  awk -F'|' '
    { rows[NR] = $0; for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } if (NF > nf) nf = NF }
    END {
      for (r = 1; r <= NR; r++) {
        line = "|"
        for (i = 1; i <= nf; i++) line = line sprintf(" %-" w[i] "s |", c[r, i])
        print line
        if (r == 1) {
          line = "|"
          for (i = 1; i <= nf; i++) { dash = ""; for (k = 0; k < w[i]; k++) dash = dash "-"; line = line " " dash " |" }
          print line
        }
      }
    }'
}
