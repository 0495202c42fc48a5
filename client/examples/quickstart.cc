// The client library in one page: engine, commit-as-you-go connection, engine.begin(), savepoint, Session,
// typed rows, errors. Usage: pooler_client_quickstart postgresql://user:pass@host:port/db
#include <cstdio>
#include <cstdint>
#include <string>

#include <pooler/client.hpp>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s postgresql://user:pass@host:port/db\n", argv[0]);
    return 2;
  }
  try {
    auto engine = pooler::create_engine(argv[1], {.pool_size = 5, .max_overflow = 10, .pool_timeout = 30s,
                                                  .pool_recycle = 3600s, .pool_pre_ping = true});
    {  // Core: a connection from the pool, returned at scope exit (rolled back if uncommitted).
      auto conn = engine.connect();
      conn.execute(pooler::text("DROP TABLE IF EXISTS quickstart_users"));
      conn.execute(pooler::text("CREATE TABLE quickstart_users (id bigserial PRIMARY KEY, name text UNIQUE, "
                                "joined timestamptz DEFAULT now())"));
      conn.execute(pooler::text("INSERT INTO quickstart_users (name) VALUES (:n)"), {{"n", "ann"}});
      conn.commit();
    }
    {  // engine.begin(): committed by commit(), rolled back by an exception or by leaving it open.
      auto tx = engine.begin();
      tx.execute(pooler::text("INSERT INTO quickstart_users (name) VALUES (:n)"), {{"n", "bob"}});
      auto sp = tx.begin_nested();  // SAVEPOINT: undo only this part
      tx.execute(pooler::text("INSERT INTO quickstart_users (name) VALUES (:n)"), {{"n", "ghost"}});
      sp.rollback();
      tx.commit();
    }
    pooler::Session session(engine);
    for (const auto& row : session.execute(pooler::text("SELECT id, name FROM quickstart_users ORDER BY id"))) {
      auto [id, name] = row.as_tuple<std::int64_t, std::string>();
      std::printf("user %lld %s\n", static_cast<long long>(id), name.c_str());
    }
    auto n = session.execute(pooler::text("SELECT count(*) FROM quickstart_users")).scalar_one<std::int64_t>();
    try {
      session.execute(pooler::text("INSERT INTO quickstart_users (name) VALUES (:n)"), {{"n", "ann"}});
    } catch (const pooler::IntegrityError& e) {
      std::printf("duplicate refused: SQLSTATE %s\n", e.sqlstate().c_str());
      session.rollback();
    }
    session.execute(pooler::text("DROP TABLE quickstart_users"));
    session.commit();
    std::printf("users: %lld\n%s\n", static_cast<long long>(n), engine.pool().status().c_str());
    return n == 2 ? 0 : 1;
  } catch (const pooler::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
