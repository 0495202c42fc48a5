// Loading rows into objects: 100k rows of a 5-column table read into mapped structs through the ORM
// (session.scalars(select<Row>()).all(): identity map, snapshots, lazy-load hooks included) vs the same rows
// through raw libpq (PQexecParams + PQgetvalue parsed into plain structs). Rounds alternate so that drift on a
// shared machine hits both alike; the best round of each is reported, and the ratio ORM / raw.
//
// Usage: orm_bench postgresql://app:secret@127.0.0.1:5432/app [rows=100000] [rounds=5]
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "bench/client/raw_connection.h"
#include "pooler/client.hpp"

struct BenchRow {
  std::int64_t id{};
  std::string name{};
  std::string email{};
  std::int32_t score{};
  bool active{};
};

template <>
struct pooler::orm::mapping<BenchRow> {
  static constexpr std::string_view table = "orm_bench_rows";
  static inline const auto columns = std::tuple{
      column(&BenchRow::id, "id", BigInteger).primary_key(),
      column(&BenchRow::name, "name", Text),
      column(&BenchRow::email, "email", Text),
      column(&BenchRow::score, "score", Integer),
      column(&BenchRow::active, "active", Boolean),
  };
};

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

template <class T>
T parse_int(const char* s, int len) {
  T v{};
  std::from_chars(s, s + len, v);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s postgresql://user:pass@host:port/db [rows] [rounds]\n", argv[0]);
    return 2;
  }
  const long rows = argc > 2 ? std::atol(argv[2]) : 100000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  try {
    auto engine = pooler::create_engine(argv[1], {.pool_size = 1, .max_overflow = 0});
    auto models = pooler::orm::metadata<BenchRow>();
    models.drop_all(engine);
    models.create_all(engine);
    {
      auto tx = engine.begin();
      tx.exec_driver_sql("INSERT INTO orm_bench_rows (name, email, score, active) SELECT 'user ' || g, 'user' || g || "
                         "'@example.com', g % 1000, g % 3 = 0 FROM generate_series(1, $1::int) g",
                         {pooler::Value(static_cast<std::int32_t>(rows))});
      tx.commit();
    }

    PGconn* raw = connect_raw(engine);
    if (raw == nullptr) return 1;
    const char* sql = "SELECT id, name, email, score, active FROM orm_bench_rows";
    long sink = 0;
    auto raw_load = [&] {
      auto start = Clock::now();
      PGresult* r = PQexecParams(raw, sql, 0, nullptr, nullptr, nullptr, nullptr, 0);
      if (PQresultStatus(r) != PGRES_TUPLES_OK) std::abort();
      int n = PQntuples(r);
      std::vector<BenchRow> out;
      out.reserve(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) {
        BenchRow row;
        row.id = parse_int<std::int64_t>(PQgetvalue(r, i, 0), PQgetlength(r, i, 0));
        row.name.assign(PQgetvalue(r, i, 1), static_cast<std::size_t>(PQgetlength(r, i, 1)));
        row.email.assign(PQgetvalue(r, i, 2), static_cast<std::size_t>(PQgetlength(r, i, 2)));
        row.score = parse_int<std::int32_t>(PQgetvalue(r, i, 3), PQgetlength(r, i, 3));
        row.active = PQgetvalue(r, i, 4)[0] == 't';
        out.push_back(std::move(row));
      }
      PQclear(r);
      double t = seconds_since(start);
      sink += static_cast<long>(out.size());
      return t;  // freeing the structs is not part of loading them (the ORM side is timed likewise)
    };
    auto orm_load = [&] {
      auto start = Clock::now();
      pooler::Session session(engine);
      auto objects = session.scalars(pooler::orm::select<BenchRow>()).all();
      sink += static_cast<long>(objects.size());
      double t = seconds_since(start);
      session.close();  // releasing 100k objects is not part of loading them
      return t;
    };

    raw_load();  // warm-up: plan cache, page cache
    orm_load();
    double best_raw = 1e9;
    double best_orm = 1e9;
    for (int round = 0; round < rounds; ++round) {
      double r = raw_load();
      double o = orm_load();
      std::printf("round %d: raw libpq %.1f ms  ORM %.1f ms  ratio %.3f\n", round + 1, r * 1e3, o * 1e3, r / o);
      best_raw = std::min(best_raw, r);
      best_orm = std::min(best_orm, o);
    }
    std::printf("\nloading %ld rows (5 columns) into structs (best of %d):\n", rows, rounds);
    std::printf("  raw libpq (PQexecParams + parse)       %8.1f ms  %10.0f rows/s\n", best_raw * 1e3, rows / best_raw);
    std::printf("  ORM session.scalars(select<T>()).all() %8.1f ms  %10.0f rows/s\n", best_orm * 1e3, rows / best_orm);
    std::printf("  throughput ratio ORM / raw             %8.3f     (target >= 0.8)\n", best_raw / best_orm);
    PQfinish(raw);
    models.drop_all(engine);
    return sink == 42 ? 3 : 0;  // keep `sink` alive
  } catch (const pooler::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
