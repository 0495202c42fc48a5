// The engine's embedded QueuePool under real load and failure: 32 threads on pool_size 4 / max_overflow 4
// never open more than 8 server connections, pool_timeout raises TimeoutError with QueuePool's text,
// pre_ping survives a server restart unseen, and a lost connection is reported once then replaced.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/client/client_fixture.h"
#include "tests/harness/libpq_util.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

class IntegrationClientPool : public ClientClusterTest {
 protected:
  // Server backends of role app with this application_name.
  static int backends(PGconn* admin, const std::string& app_name) {
    return std::stoi(query_value(admin, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND "
                                        "application_name = " + quote_literal(app_name)));
  }
  // Polls until pred() holds, up to 30 s (backends leave pg_stat_activity asynchronously).
  template <class Pred>
  static bool eventually(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return pred();
  }
};

// 32 threads share one engine with pool_size 4 / max_overflow 4: never more than 8 connections in
// pg_stat_activity, every checkout served, overflow closed again afterwards, dispose() closes the rest.
TEST_F(IntegrationClientPool, ThirtyTwoThreadsNeverExceedEightConnections) {
  auto engine = create_engine(url("application_name=pool-load"), {.pool_size = 4, .max_overflow = 4});
  PgConnPtr admin = connect(cluster().superuser_conninfo("app"));
  std::atomic<bool> done{false};
  std::atomic<int> max_backends{0};
  std::atomic<int> max_open{0};
  std::thread monitor([&] {
    while (!done) {
      max_backends = std::max(max_backends.load(), backends(admin.get(), "pool-load"));
      max_open = std::max(max_open.load(), engine.pool().snapshot().open);
      std::this_thread::sleep_for(2ms);
    }
  });
  std::atomic<int> statements{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 32; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        auto conn = engine.connect();
        auto r = conn.execute(text("SELECT :t::int * 1000 + :i::int, pg_sleep(0.005)"), {{"t", t}, {"i", i}});
        if (r.scalar_one<int>() == t * 1000 + i) ++statements;
        conn.commit();
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  monitor.join();
  EXPECT_EQ(statements, 32 * 15);
  EXPECT_LE(max_backends, 8);
  EXPECT_GE(max_backends, 5) << "the load should have needed overflow connections";
  EXPECT_LE(max_open, 8);
  PoolStatus s = engine.pool().snapshot();
  EXPECT_EQ(s.checkedout, 0);
  EXPECT_LE(s.checkedin, 4);  // overflow connections are closed when returned with pool_size idle
  EXPECT_EQ(s.checkouts_total, 32u * 15u);
  EXPECT_TRUE(eventually([&] { return backends(admin.get(), "pool-load") == s.checkedin; }));
  engine.dispose();
  EXPECT_EQ(engine.pool().checkedin(), 0);
  EXPECT_TRUE(eventually([&] { return backends(admin.get(), "pool-load") == 0; }));
}

// Waiting longer than pool_timeout raises TimeoutError with QueuePool's message; a returned connection goes
// to the thread waiting for it; an unreachable server fails checkout promptly with OperationalError.
TEST_F(IntegrationClientPool, TimeoutErrorAndHandOff) {
  auto engine = create_engine(url(), {.pool_size = 1, .max_overflow = 0, .pool_timeout = 1s});
  auto held = engine.connect();
  auto start = std::chrono::steady_clock::now();
  try {
    (void)engine.connect();
    FAIL() << "no timeout";
  } catch (const TimeoutError& e) {
    EXPECT_STREQ(e.what(), "pool \"app/app\" limit of size 1 overflow 0 reached, connection timed out, timeout 1.00");
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(engine.pool().snapshot().timeouts_total, 1u);
  // The held connection is unaffected.
  EXPECT_EQ(held.execute(text("SELECT 1")).scalar_one<int>(), 1);

  auto patient = create_engine(url(), {.pool_size = 1, .max_overflow = 0, .pool_timeout = 60s});
  auto first = patient.connect();
  first.execute(text("CREATE TEMP TABLE marker (v int)"));  // session state tells the connections apart
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto conn = patient.connect();
    // Same server connection, reset by ROLLBACK: the temp table (session state) is still there.
    got = conn.execute(text("SELECT count(*) FROM pg_tables WHERE tablename = 'marker'")).scalar_one<std::int64_t>() == 1;
  });
  ASSERT_TRUE(eventually([&] { return patient.pool().snapshot().waiting == 1; }));
  first.commit();
  first.close();
  waiter.join();
  EXPECT_TRUE(got);

  // Nothing listens on port 1: OperationalError (08001) at once, not a wait until pool_timeout.
  auto down = create_engine("postgresql://app:secret@127.0.0.1:1/app", {.pool_timeout = 60s});
  start = std::chrono::steady_clock::now();
  try {
    (void)down.connect();
    FAIL() << "no error";
  } catch (const OperationalError& e) {
    EXPECT_EQ(e.sqlstate(), "08001");
    EXPECT_NE(std::string(e.what()).find("could not open a server connection"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
}

// A server restart: with pool_pre_ping the app never sees an error; without it the first statement on a
// dead connection raises OperationalError (connection_invalidated) and the next one works.
TEST_F(IntegrationClientPool, PrePingSurvivesServerRestart) {
  auto pinged = create_engine(url(), {.pool_size = 2, .pool_pre_ping = true});
  auto plain = create_engine(url(), {.pool_size = 2});
  {
    auto a = pinged.connect();
    auto b = pinged.connect();
    auto c = plain.connect();
    EXPECT_EQ(a.execute(text("SELECT 1")).scalar_one<int>() + b.execute(text("SELECT 1")).scalar_one<int>() +
                  c.execute(text("SELECT 1")).scalar_one<int>(),
              3);
  }
  EXPECT_EQ(pinged.pool().checkedin(), 2);
  std::string old_pid;
  {
    auto conn = pinged.connect();
    old_pid = conn.execute(text("SELECT pg_backend_pid()::text")).scalar_one<std::string>();
  }
  cluster().restart();

  for (int i = 0; i < 3; ++i) {
    auto conn = pinged.connect();
    EXPECT_EQ(conn.execute(text("SELECT :i::int"), {{"i", i}}).scalar_one<int>(), i);
    EXPECT_NE(conn.execute(text("SELECT pg_backend_pid()::text")).scalar_one<std::string>(), old_pid);
  }
  EXPECT_GE(pinged.pool().snapshot().invalidations_total, 1u);

  auto conn = plain.connect();
  try {
    conn.execute(text("SELECT 1"));
    FAIL() << "a dead connection went unnoticed";
  } catch (const OperationalError& e) {
    EXPECT_TRUE(e.connection_invalidated());
    EXPECT_FALSE(e.sqlstate().empty());
  }
  EXPECT_TRUE(conn.invalidated());
  // The statement's transaction died with the connection: rollback() first, then the Connection
  // reconnects by itself.
  EXPECT_THROW(conn.execute(text("SELECT 1")), PendingRollbackError);
  conn.rollback();
  EXPECT_EQ(conn.execute(text("SELECT 2")).scalar_one<int>(), 2);
}

}  // namespace
}  // namespace pooler::test
