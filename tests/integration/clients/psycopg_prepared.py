#!/usr/bin/python3
"""psycopg 3 prepared-statement workloads, unchanged, for a transaction-mode pooler (run by prepared_test).

Usage: psycopg_prepared.py HOST PORT USER PASSWORD DBNAME [--phase basic|rollback|evict] [--threads N]

Each thread has its own connection; there are more threads than the pool has server connections, so the
statements a connection prepared must follow it onto whichever server connection it gets next. Every result
is checked. Prints one summary line per phase; exits 1 on the first wrong result or error (with traceback).

Phases:
  basic     cursor.execute(..., prepare=True) in autocommit, the same inside explicit transactions
            (conn.transaction()), executemany (pipelined Parse/Bind/Execute), and a connection with
            prepare_threshold = 0 so that every statement is prepared.
  rollback  psycopg 3.1 sends `DEALLOCATE ALL` (as SQL) after every rollback once it has prepared
            statements; some threads roll back repeatedly while the others keep executing theirs.
  evict     prepared_max = 4 with 8 distinct statements: psycopg sends `DEALLOCATE _pg3_N` (as SQL) for each
            statement it evicts from its own cache.
"""

import argparse
import sys
import threading
import traceback

import psycopg

# Distinct statement texts per loop: more than the pooler's max_prepared_statements (10 in the test), so its
# per-server-connection cache has to evict while the clients keep using everything.
DISTINCT = 12


class Failure(Exception):
    pass


def check(got, want, what):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


def connect(args, **kwargs):
    return psycopg.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        dbname=args.dbname,
        sslmode="disable",
        connect_timeout=20,
        **kwargs,
    )


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = 0

    def add(self, k=1):
        with self.lock:
            self.n += k


def basic_worker(args, w, queries):
    # Autocommit: each execute is its own transaction, so consecutive ones may get different server
    # connections.
    with connect(args, autocommit=True) as conn:
        cur = conn.cursor()
        for i in range(args.rounds):
            for k in range(DISTINCT):
                cur.execute(f"SELECT %s::int + {k}", (i * 100 + w,), prepare=True)
                check(cur.fetchone()[0], i * 100 + w + k, f"worker {w} autocommit +{k}")
                queries.add()
        # Several rows and several parameter types through one prepared statement.
        for i in range(args.rounds):
            cur.execute(
                "SELECT g, %s::text || g::text FROM generate_series(1, %s::int) g", (f"w{w}-", i + 1), prepare=True
            )
            rows = cur.fetchall()
            check(len(rows), i + 1, f"worker {w} row count")
            check(rows[-1], (i + 1, f"w{w}-{i + 1}"), f"worker {w} last row")
            queries.add()

    # Explicit transactions: BEGIN, several prepared statements, COMMIT on one server connection.
    with connect(args) as conn:
        cur = conn.cursor()
        for t in range(args.rounds // 2):
            with conn.transaction():
                for j in range(5):
                    cur.execute(
                        "INSERT INTO psy_items (worker, n) VALUES (%s, %s)", (w, t * 5 + j), prepare=True
                    )
                    queries.add()
                cur.execute("SELECT count(*) FROM psy_items WHERE worker = %s", (w,), prepare=True)
                check(cur.fetchone()[0], (t + 1) * 5, f"worker {w} count inside transaction {t}")
                queries.add()
        # executemany: psycopg pipelines Parse/Bind/Execute for every row, then one Sync.
        with conn.transaction():
            cur.executemany(
                "INSERT INTO psy_items (worker, n) VALUES (%s, %s)", [(w, 1000 + n) for n in range(50)]
            )
            queries.add(50)
        cur.execute("SELECT count(*), sum(n) FROM psy_items WHERE worker = %s AND n >= 1000", (w,), prepare=True)
        check(cur.fetchone(), (50, sum(1000 + n for n in range(50))), f"worker {w} executemany rows")
        conn.commit()
        queries.add()

    # prepare_threshold = 0: psycopg prepares every statement on its first execution.
    with connect(args, autocommit=True) as conn:
        conn.prepare_threshold = 0
        cur = conn.cursor()
        for i in range(args.rounds):
            cur.execute("SELECT %s::text || %s::text", (f"a{i}", f"b{w}"))
            check(cur.fetchone()[0], f"a{i}b{w}", f"worker {w} threshold 0")
            cur.execute("SELECT %s::bigint * 2", (i + w,))
            check(cur.fetchone()[0], (i + w) * 2, f"worker {w} threshold 0 bigint")
            queries.add(2)


def rollback_worker(args, w, queries):
    with connect(args) as conn:
        conn.prepare_threshold = 0
        cur = conn.cursor()
        for i in range(args.rounds):
            for k in range(4):
                cur.execute(f"SELECT %s::int * {k + 2}", (i + w,))
                check(cur.fetchone()[0], (i + w) * (k + 2), f"worker {w} round {i} *{k + 2}")
                queries.add()
            if w % 2 == 0:
                # ROLLBACK, then psycopg sends DEALLOCATE ALL and forgets its statements.
                conn.rollback()
            else:
                conn.commit()
            if i % 3 == 0:
                # A transaction block left by an exception also rolls back (and deallocates).
                try:
                    with conn.transaction():
                        cur.execute("SELECT %s::int", (i,))
                        check(cur.fetchone()[0], i, f"worker {w} inside doomed transaction")
                        raise psycopg.Rollback()
                except psycopg.Rollback:
                    pass
                queries.add()


def evict_worker(args, w, queries):
    with connect(args, autocommit=True) as conn:
        conn.prepare_threshold = 0
        conn.prepared_max = 4
        cur = conn.cursor()
        for i in range(args.rounds):
            for k in range(8):
                cur.execute(f"SELECT %s::int - {k}", (i * 10 + w,))
                check(cur.fetchone()[0], i * 10 + w - k, f"worker {w} round {i} -{k}")
                queries.add()


PHASES = {"basic": basic_worker, "rollback": rollback_worker, "evict": evict_worker}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port")
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("dbname")
    parser.add_argument("--phase", choices=sorted(PHASES), default="basic")
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    if args.phase == "basic":
        with connect(args, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS psy_items")
            conn.execute("CREATE TABLE psy_items (worker int NOT NULL, n int NOT NULL)")

    queries = Counter()
    errors = []

    def run(w):
        try:
            PHASES[args.phase](args, w, queries)
        except BaseException:  # noqa: B902 - report everything, including psycopg errors
            errors.append(f"worker {w}:\n{traceback.format_exc()}")

    threads = [threading.Thread(target=run, args=(w,)) for w in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        print(f"psycopg {psycopg.__version__} phase={args.phase} FAILED: {len(errors)} of {args.threads} workers")
        return 1
    print(f"psycopg {psycopg.__version__} phase={args.phase} threads={args.threads} queries={queries.n} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
