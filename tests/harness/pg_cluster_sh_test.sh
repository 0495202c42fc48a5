#!/usr/bin/env bash
# Self-test of pg_cluster.sh: start, query over TCP as app, kill -9, start again, restart, and cleanup on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "FAIL: $*" >&2; exit 1; }

# Run the library in a child shell so its EXIT trap fires, then check from here that nothing is left.
out=$(bash -c '
  set -euo pipefail
  source "$1"
  pg_cluster_start
  echo "dir=$PG_DIR port=$PG_PORT"
  [ "$(PGPASSWORD=secret psql -X -A -t -h 127.0.0.1 -p "$PG_PORT" -U app -d app -c "select current_user")" = app ]
  [ "$(pg_cluster_psql "select 6 * 7")" = 42 ]
  pg_cluster_kill9
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then echo "still up after kill9"; exit 1; fi
  pg_cluster_restart
  [ "$(pg_cluster_psql "select 1")" = 1 ]
  pg_cluster_psql "create table kept(v int); insert into kept values (7)" app
  pg_cluster_restart
  [ "$(pg_cluster_psql "select v from kept" app)" = 7 ]
  pg_cluster_stop
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then echo "still up after stop"; exit 1; fi
  pg_cluster_restart
  echo ok
' _ "$here/pg_cluster.sh") || fail "library run failed: $out"

echo "$out"
[ "$(tail -n 1 <<<"$out")" = ok ] || fail "script did not finish"
dir=$(sed -n 's/^dir=\([^ ]*\) .*/\1/p' <<<"$out")
port=$(sed -n 's/.* port=\([0-9]*\)$/\1/p' <<<"$out")
[ -n "$dir" ] && [ ! -e "$dir" ] || fail "cluster dir $dir still exists"
! /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -p "$port" || fail "server on $port still running"
echo PASS
