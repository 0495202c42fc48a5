#!/usr/bin/env bash
# README quick start (Debian 12, as root): installs dependencies, builds, starts a throwaway PostgreSQL 15 on
# 127.0.0.1:5432 (data in /tmp/pooler-quickstart) and pooler in front of it on 127.0.0.1:6432 with
# pooler.toml.example, then prints how to connect. `scripts/quickstart.sh stop` stops both and removes it all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

qs_dir=/tmp/pooler-quickstart
pg_port=5432
pooler_port=6432
pooler_pid_file=$qs_dir/pooler.pid
pooler_log=$qs_dir/pooler.log
binary=$repo/build/release/pooler
config=$repo/pooler.toml.example

export PG_DIR=$qs_dir/pg PG_CLUSTER_KEEP=1
# shellcheck source=../tests/harness/pg_cluster.sh
source "$repo/tests/harness/pg_cluster.sh"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pooler_pid() {
  local pid
  pid=$(cat "$pooler_pid_file" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

print_usage() {
  cat <<MSG

pooler is running (pid $(pooler_pid)) on 127.0.0.1:$pooler_port, in front of PostgreSQL 15 on 127.0.0.1:$pg_port.

  Connect:  PGPASSWORD=secret psql -h 127.0.0.1 -p $pooler_port -U app app
  Logs:     $pooler_log (pooler), $PG_DIR/server.log (PostgreSQL)
  Config:   $config
  Stop:     scripts/quickstart.sh stop   (stops both and deletes $qs_dir)
MSG
}

stop_all() {
  local pid
  if pid=$(pooler_pid); then
    echo "quickstart: stopping pooler (pid $pid)"
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    echo "quickstart: stopping PostgreSQL"
    PG_SOCKET_DIR=$PG_DIR/sock PG_DATA=$PG_DIR/data PG_PORT=$pg_port pg_cluster_stop || true
  fi
  rm -rf "$qs_dir"
  echo "quickstart: stopped, $qs_dir removed"
}

case "${1:-start}" in
  stop) stop_all; exit 0 ;;
  start) ;;
  *) echo "usage: scripts/quickstart.sh [start|stop]" >&2; exit 2 ;;
esac

if pooler_pid >/dev/null; then
  echo "quickstart: already running"
  PG_SOCKET_DIR=$PG_DIR/sock
  print_usage
  exit 0
fi

bash scripts/deps.sh

echo "quickstart: building build/release (Release)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target pooler
[ -x "$binary" ] || { echo "quickstart: $binary was not built" >&2; exit 1; }

ours_running() { [ -f "$PG_DIR/data/postmaster.pid" ] && kill -0 "$(head -n 1 "$PG_DIR/data/postmaster.pid")" 2>/dev/null; }
if port_open "$pg_port" && ! ours_running; then
  cat >&2 <<MSG
quickstart: port $pg_port on 127.0.0.1 is already taken by another server, and pooler.toml.example points at
it. Stop that server first (e.g. \`pg_ctlcluster 15 main stop\`, or \`systemctl stop postgresql\`), then re-run.
MSG
  exit 1
fi
if port_open "$pooler_port"; then
  echo "quickstart: port $pooler_port on 127.0.0.1 is already taken; stop whatever listens there and re-run" >&2
  exit 1
fi

mkdir -p "$qs_dir"
if ours_running; then
  PG_SOCKET_DIR=$PG_DIR/sock PG_DATA=$PG_DIR/data PG_PORT=$pg_port
  echo "quickstart: PostgreSQL already running in $PG_DIR"
else
  echo "quickstart: starting a throwaway PostgreSQL 15 in $PG_DIR on 127.0.0.1:$pg_port (role app, password secret, database app)"
  pg_cluster_start "$pg_port"
fi

echo "quickstart: starting $binary -c $config"
setsid "$binary" -c "$config" </dev/null >"$pooler_log" 2>&1 &
echo $! >"$pooler_pid_file"

deadline=$((SECONDS + 20))
until port_open "$pooler_port"; do
  if ! pooler_pid >/dev/null; then
    echo "quickstart: pooler exited; its log ($pooler_log):" >&2
    tail -n 40 "$pooler_log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "quickstart: pooler did not listen on $pooler_port within 20 s; its log ($pooler_log):" >&2
    tail -n 40 "$pooler_log" >&2
    exit 1
  fi
  sleep 0.1
done

print_usage
