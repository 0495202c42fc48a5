#!/usr/bin/python3
"""asyncpg workloads, unchanged, for a transaction-mode pooler (run by prepared_test).

Usage: asyncpg_prepared.py HOST PORT USER PASSWORD DBNAME [--connections N] [--rounds N]

asyncpg always uses named protocol-level statements: conn.prepare() makes one explicitly, and fetch/fetchval/
execute with arguments prepare theirs through asyncpg's statement cache. Several connections (more than the
pool has server connections) run concurrently, so statements must follow each connection onto whichever
server connection it gets. One connection per worker also uses a tiny statement cache, so asyncpg closes
evicted statements (protocol Close) while still using others. Every result is checked; prints a summary and
exits 1 on the first wrong result or error.
"""

import argparse
import asyncio
import sys
import traceback

import asyncpg


class Failure(Exception):
    pass


def check(got, want, what):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


async def connect(args, **kwargs):
    return await asyncpg.connect(
        host=args.host,
        port=int(args.port),
        user=args.user,
        password=args.password,
        database=args.dbname,
        ssl=False,
        timeout=20,
        **kwargs,
    )


async def worker(args, w, counts):
    conn = await connect(args)
    try:
        # An explicit prepared statement, executed many times with different arguments.
        mul = await conn.prepare("SELECT $1::int * $2::int")
        for i in range(args.rounds):
            check(await mul.fetchval(i, w + 1), i * (w + 1), f"worker {w} prepared fetchval {i}")
            counts["queries"] += 1
        # Several rows, and a statement with a different shape.
        rows_stmt = await conn.prepare("SELECT g, $1::text || g::text AS label FROM generate_series(1, $2::int) g")
        for i in range(1, args.rounds + 1):
            rows = await rows_stmt.fetch(f"w{w}-", i)
            check(len(rows), i, f"worker {w} row count")
            check((rows[-1]["g"], rows[-1]["label"]), (i, f"w{w}-{i}"), f"worker {w} last row")
            counts["queries"] += 1
        # fetchval / fetchrow with arguments go through asyncpg's statement cache (named statements too).
        for i in range(args.rounds):
            check(await conn.fetchval("SELECT $1::bigint + $2::bigint", i, w), i + w, f"worker {w} fetchval")
            row = await conn.fetchrow("SELECT $1::text AS t, $2::int AS n", f"t{i}", i)
            check((row["t"], row["n"]), (f"t{i}", i), f"worker {w} fetchrow")
            counts["queries"] += 2
        # executemany: Bind/Execute per row, pipelined.
        await conn.executemany("INSERT INTO apg_items (worker, n) VALUES ($1, $2)", [(w, n) for n in range(100)])
        counts["queries"] += 100
        check(
            tuple(await conn.fetchrow("SELECT count(*) AS c, sum(n) AS s FROM apg_items WHERE worker = $1", w)),
            (100, sum(range(100))),
            f"worker {w} executemany rows",
        )
        # Inside an explicit transaction: one server connection until COMMIT.
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO apg_items (worker, n) VALUES ($1, $2)", [(w, 1000 + n) for n in range(20)]
            )
            check(
                await conn.fetchval("SELECT count(*) FROM apg_items WHERE worker = $1", w),
                120,
                f"worker {w} count inside transaction",
            )
            check(await mul.fetchval(6, 7), 42, f"worker {w} prepared inside transaction")
            counts["queries"] += 22
        # A transaction that fails and rolls back; the connection and its statements keep working.
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO apg_items (worker, n) VALUES ($1, $2)", w, -1)
                await conn.fetchval("SELECT 1 / $1::int", 0)
        except asyncpg.DivisionByZeroError:
            pass
        else:
            raise Failure(f"worker {w}: division by zero did not raise")
        check(await conn.fetchval("SELECT count(*) FROM apg_items WHERE worker = $1 AND n = -1", w), 0,
              f"worker {w} rolled back row")
        check(await mul.fetchval(3, 3), 9, f"worker {w} prepared after rollback")
        counts["queries"] += 4
    finally:
        await conn.close()

    # A statement cache of 4 and 8 distinct statements in turn: asyncpg closes the ones it evicts.
    small = await connect(args, statement_cache_size=4)
    try:
        for i in range(args.rounds // 2):
            for k in range(8):
                check(await small.fetchval(f"SELECT $1::int + {k}", i), i + k, f"worker {w} small cache +{k}")
                counts["queries"] += 1
    finally:
        await small.close()


async def amain(args):
    setup = await connect(args)
    try:
        await setup.execute("DROP TABLE IF EXISTS apg_items")
        await setup.execute("CREATE TABLE apg_items (worker int NOT NULL, n int NOT NULL)")
    finally:
        await setup.close()

    counts = {"queries": 0}
    results = await asyncio.gather(*(worker(args, w, counts) for w in range(args.connections)), return_exceptions=True)
    errors = [(w, r) for w, r in enumerate(results) if isinstance(r, BaseException)]
    for w, e in errors:
        print(f"worker {w}:", file=sys.stderr)
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    if errors:
        print(f"asyncpg {asyncpg.__version__} FAILED: {len(errors)} of {args.connections} workers")
        return 1
    print(f"asyncpg {asyncpg.__version__} connections={args.connections} queries={counts['queries']} ok")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port")
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("dbname")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
