# Bash library for shell-level tests and scripts: a throwaway PostgreSQL 15 cluster on a free 127.0.0.1 port.
# Usage: source tests/harness/pg_cluster.sh; pg_cluster_start; psql "$(pg_cluster_conninfo)" ...; (cleanup is automatic)
#
# pg_cluster_start [port]  initdb + start; sets PG_PORT, PG_DIR, PG_BIN, PG_SOCKET_DIR, PG_DATA; creates role
#                          app (password "secret", SCRAM) and database app owned by it; installs an EXIT trap.
#                          A preset PG_DIR is used as is (an existing cluster there is started, not re-created);
#                          PG_CLUSTER_KEEP=1 skips the EXIT trap (for clusters meant to outlive the script).
# pg_cluster_stop | pg_cluster_kill9 | pg_cluster_restart | pg_cluster_cleanup
# pg_cluster_psql SQL [db]  runs SQL as the superuser over the unix socket (unaligned, tuples only)

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${PG_PORT:-}
PG_DIR=${PG_DIR:-}
PG_SOCKET_DIR=
PG_DATA=
_pg_cluster_created_dir=0

_pg_as_owner() {
  # PostgreSQL refuses to run as root; run its programs as the postgres OS user then.
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

_pg_free_port() {
  # Ask the kernel (bind port 0) through perl, which every Debian has (perl-base).
  perl -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0) or die; print $s->sockport, "\n"'
}

_pg_log_tail() {
  echo "--- server log tail ($PG_DIR/server.log) ---" >&2
  tail -n 40 "$PG_DIR/server.log" >&2 2>/dev/null || true
}

_pg_start_server() {
  if ! _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -o "-p $PG_PORT" -w -t 30 start >/dev/null; then
    echo "pg_cluster: PostgreSQL did not start on port $PG_PORT" >&2
    _pg_log_tail
    return 1
  fi
  local deadline=$((SECONDS + 30))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "pg_cluster: port $PG_PORT not accepting connections after 30 s" >&2
      _pg_log_tail
      return 1
    fi
    sleep 0.1
  done
}

pg_cluster_psql() {
  psql -X -q -v ON_ERROR_STOP=1 -A -t -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d "${2:-postgres}" -c "$1"
}

pg_cluster_conninfo() {
  echo "host=127.0.0.1 port=$PG_PORT user=${1:-app} password=${2:-secret} dbname=${3:-app}"
}

pg_cluster_start() {
  local fresh=0
  if [ -z "$PG_DIR" ]; then
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pooler-pg-sh-XXXXXX")
    _pg_cluster_created_dir=1
  fi
  mkdir -p "$PG_DIR/sock"
  PG_SOCKET_DIR=$PG_DIR/sock
  PG_DATA=$PG_DIR/data
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR" "$PG_SOCKET_DIR"; fi
  if [ "${PG_CLUSTER_KEEP:-0}" != 1 ]; then trap pg_cluster_cleanup EXIT; fi
  PG_PORT=${1:-${PG_PORT:-$(_pg_free_port)}}

  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    fresh=1
    _pg_as_owner "$PG_BIN/initdb" --no-sync -A trust --auth-host=scram-sha-256 -U postgres -E UTF8 --locale=C \
      -D "$PG_DATA" >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    cat >>"$PG_DATA/postgresql.conf" <<CONF
# pooler test harness (pg_cluster.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_SOCKET_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 200
password_encryption = 'scram-sha-256'
CONF
  fi
  _pg_start_server || return 1
  if [ "$fresh" = 1 ]; then
    pg_cluster_psql "CREATE ROLE app LOGIN PASSWORD 'secret'" >/dev/null || return 1
    pg_cluster_psql "CREATE DATABASE app OWNER app" >/dev/null || return 1
  fi
  export PG_PORT PG_DIR PG_BIN PG_SOCKET_DIR PG_DATA
}

_pg_postmaster_pid() {
  [ -f "$PG_DATA/postmaster.pid" ] && head -n 1 "$PG_DATA/postmaster.pid"
}

_pg_children_of() {
  local stat line rest
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    rest=${line##*) }
    # fields after "(comm)": state ppid ...
    set -- $rest
    if [ "${2:-}" = "$_pg_parent" ]; then
      line=${stat#/proc/}
      echo "${line%/stat}"
    fi
  done
}

_pg_gone() {
  # Gone, or a zombie nobody reaped yet (which holds nothing any more).
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || return 0
  rest=${line##*) }
  case "$rest" in Z* | X*) return 0 ;; esac
  return 1
}

pg_cluster_stop() {
  if [ -n "$(_pg_postmaster_pid)" ]; then
    _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
  fi
}

pg_cluster_kill9() {
  local pid children p deadline
  pid=$(_pg_postmaster_pid) || { echo "pg_cluster_kill9: server not running" >&2; return 1; }
  # Freeze it so it cannot fork a child we would miss, then kill it and all its children, like a crash that
  # drops every connection at once.
  kill -STOP "$pid"
  deadline=$((SECONDS + 5))
  until grep -q '^State:.*[TtZ]' "/proc/$pid/status" 2>/dev/null || [ ! -d "/proc/$pid" ] || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 0.01
  done
  _pg_parent=$pid
  children=$(_pg_children_of)
  kill -KILL "$pid" $children 2>/dev/null || true
  deadline=$((SECONDS + 10))
  for p in "$pid" $children; do
    until _pg_gone "$p"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "pg_cluster_kill9: process $p still alive" >&2
        return 1
      fi
      sleep 0.01
    done
  done
  # Drop the crashed server's SysV segment and lock files so the next start does not trip over them.
  local shmid
  shmid=$(sed -n 7p "$PG_DATA/postmaster.pid" 2>/dev/null | awk '{print $2}')
  if [ -n "$shmid" ] && command -v ipcrm >/dev/null; then ipcrm -m "$shmid" 2>/dev/null || true; fi
  rm -f "$PG_DATA/postmaster.pid" "$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT" "$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT.lock"
}

pg_cluster_restart() {
  pg_cluster_stop
  _pg_start_server
}

pg_cluster_cleanup() {
  [ -n "$PG_DIR" ] || return 0
  if [ -n "$PG_DATA" ] && [ -n "$(_pg_postmaster_pid)" ]; then
    _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 20 stop >/dev/null 2>&1 || pg_cluster_kill9 || true
  fi
  if [ "$_pg_cluster_created_dir" = 1 ]; then rm -rf "$PG_DIR"; fi
  PG_DIR=
}
