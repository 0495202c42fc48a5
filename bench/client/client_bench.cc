// Round trips per second of a one-parameter SELECT through the client library (Connection::execute with a
// :name parameter, result decoded) vs raw libpq (PQexecParams, result decoded) on one connection each, and
// the cost of engine.connect() + close() (pool checkout and return, no statement). Rounds alternate between
// the two so that drift on a shared machine hits both alike; the best round of each is reported.
//
// Usage: client_bench postgresql://app:secret@127.0.0.1:5432/app [seconds-per-round=2] [rounds=5]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "bench/client/raw_connection.h"
#include "pooler/client.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Runs `op` repeatedly for `seconds`; returns operations per second.
template <class Op>
double rate(double seconds, Op op) {
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  long n = 0;
  auto start = Clock::now();
  while (Clock::now() < end) {
    for (int i = 0; i < 64; ++i) op(n++);
  }
  return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s postgresql://user:pass@host:port/db [seconds] [rounds]\n", argv[0]);
    return 2;
  }
  const double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  try {
    // AUTOCOMMIT so the library sends exactly what raw libpq sends: one PQexecParams per statement.
    auto engine = pooler::create_engine(argv[1], {.pool_size = 1, .max_overflow = 0, .isolation_level = "AUTOCOMMIT"});
    auto conn = engine.connect();
    const auto stmt = pooler::text("SELECT :x::int + 1");

    PGconn* raw = connect_raw(engine);
    if (raw == nullptr) return 1;
    long sink = 0;
    auto raw_op = [&](long i) {
      std::string x = std::to_string(i & 0xFFFF);
      const char* values[1] = {x.c_str()};
      const Oid types[1] = {23};
      PGresult* r = PQexecParams(raw, "SELECT $1::int + 1", 1, types, values, nullptr, nullptr, 0);
      if (PQresultStatus(r) != PGRES_TUPLES_OK) std::abort();
      sink += std::atoi(PQgetvalue(r, 0, 0));
      PQclear(r);
    };
    auto lib_op = [&](long i) {
      sink += conn.execute(stmt, {{"x", static_cast<int>(i & 0xFFFF)}}).scalar_one<int>();
    };
    auto pool_engine = pooler::create_engine(argv[1], {.pool_size = 1, .max_overflow = 0});
    { auto warm = pool_engine.connect(); }
    auto pool_op = [&](long) { pool_engine.connect().close(); };

    double best_raw = 0;
    double best_lib = 0;
    double best_pool = 0;
    rate(0.5, raw_op);  // warm-up
    rate(0.5, lib_op);
    for (int round = 0; round < rounds; ++round) {
      double r = rate(seconds, raw_op);
      double l = rate(seconds, lib_op);
      double p = rate(seconds / 4, pool_op);
      std::printf("round %d: raw libpq %.0f/s  library %.0f/s  ratio %.3f  checkout+return %.0f ns\n", round + 1, r,
                  l, l / r, 1e9 / p);
      best_raw = std::max(best_raw, r);
      best_lib = std::max(best_lib, l);
      best_pool = std::max(best_pool, p);
    }
    std::printf("\nparameterized SELECT round trips, one connection (best of %d x %.1f s):\n", rounds, seconds);
    std::printf("  raw libpq (PQexecParams)   %10.0f /s\n", best_raw);
    std::printf("  pooler client execute()    %10.0f /s\n", best_lib);
    std::printf("  ratio library / raw        %10.3f   (target >= 0.95)\n", best_lib / best_raw);
    std::printf("pool checkout + return (engine.connect().close(), no statement): %.0f ns\n", 1e9 / best_pool);
    PQfinish(raw);
    return sink == 42 ? 3 : 0;  // keep `sink` alive
  } catch (const pooler::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
