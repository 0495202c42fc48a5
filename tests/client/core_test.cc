// Engine, Connection, Transaction and Session against a real server: CRUD with bound parameters, errors by
// SQLSTATE, commit-as-you-go, engine.begin(), savepoints and Session autobegin.
#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

#include "tests/client/client_fixture.h"

namespace pooler::test {
namespace {

class IntegrationClientCore : public ClientClusterTest {};

// Insert, select, update and delete with :name parameters; rowcount, Result accessors and executemany.
TEST_F(IntegrationClientCore, CrudWithParameters) {
  auto engine = create_engine(url());
  auto conn = engine.connect();
  conn.execute(text("CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, age int)"));
  auto inserted = conn.execute(text("INSERT INTO users (name, age) VALUES (:name, :age) RETURNING id"),
                               {{"name", "ann"}, {"age", 31}});
  std::int64_t ann = inserted.scalar_one<std::int64_t>();
  EXPECT_EQ(conn.execute_many(text("INSERT INTO users (name, age) VALUES (:n, :a)"),
                              {{{"n", "bob"}, {"a", 40}}, {{"n", "cy"}, {"a", std::nullopt}}}),
            2);
  conn.commit();

  // A value that looks like SQL stays a value: parameters are never spliced into the text.
  conn.execute(text("INSERT INTO users (name) VALUES (:n)"), {{"n", "x'); DROP TABLE users; --"}});
  auto r = conn.execute(text("SELECT id, name, age FROM users WHERE age > :min OR name = :n ORDER BY id"),
                        {{"min", 30}, {"n", "cy"}});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.keys(), (std::vector<std::string>{"id", "name", "age"}));
  EXPECT_EQ(r[0].get<std::int64_t>("id"), ann);
  EXPECT_EQ(r[1].get<std::string>(1), "bob");
  EXPECT_EQ(r[2].get<std::optional<int>>("age"), std::nullopt);
  EXPECT_EQ(r.columns({"name"}).scalars<std::string>().all(), (std::vector<std::string>{"ann", "bob", "cy"}));
  EXPECT_EQ(conn.execute(text("SELECT count(*) FROM users WHERE name LIKE 'x%'")).scalar_one<std::int64_t>(), 1);

  auto updated = conn.execute(text("UPDATE users SET age = age + :d WHERE age IS NOT NULL"), {{"d", 1}});
  EXPECT_EQ(updated.rowcount(), 2);
  EXPECT_FALSE(updated.returns_rows());
  EXPECT_EQ(conn.execute(text("DELETE FROM users WHERE name = :n"), {{"n", "cy"}}).rowcount(), 1);
  EXPECT_EQ(conn.execute(text("SELECT age FROM users WHERE name = :n"), {{"n", "bob"}}).scalar<int>(), 41);
  EXPECT_EQ(conn.execute(text("SELECT age FROM users WHERE name = :n"), {{"n", "nobody"}}).scalar<int>(), std::nullopt);
  conn.commit();
  // exec_driver_sql passes $n SQL straight to libpq.
  EXPECT_EQ(conn.exec_driver_sql("SELECT $1::int + $2::int", {Value(2), Value(3)}).scalar_one<int>(), 5);
  conn.close();
  EXPECT_THROW((void)conn.execute(text("SELECT 1")), ResourceClosedError);
  EXPECT_EQ(cluster().psql("SELECT string_agg(name || ':' || coalesce(age::text, '-'), ',' ORDER BY id) FROM users", "app"),
            "ann:32,bob:41,x'); DROP TABLE users; --:-");
}

// Server errors map to the DBError hierarchy with SQLSTATE, detail and statement; a failed transaction must
// be rolled back before anything else, and the connection then carries on.
TEST_F(IntegrationClientCore, ErrorsBySqlstate) {
  auto engine = create_engine(url());
  auto conn = engine.connect();
  conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, ref int CHECK (ref > 0))"));
  conn.execute(text("INSERT INTO t VALUES (1, 1)"));
  conn.commit();
  try {
    conn.execute(text("INSERT INTO t VALUES (:id, 1)"), {{"id", 1}});
    FAIL() << "no error";
  } catch (const UniqueViolation& e) {
    EXPECT_EQ(e.sqlstate(), "23505");
    EXPECT_EQ(e.detail(), "Key (id)=(1) already exists.");
    EXPECT_EQ(e.info().constraint, "t_pkey");
    EXPECT_EQ(e.statement(), "INSERT INTO t VALUES ($1, 1)");
    EXPECT_NE(std::string(e.what()).find("(23505) duplicate key value violates unique constraint \"t_pkey\""),
              std::string::npos);
  }
  // The transaction is now aborted: further statements fail with 25P02, commit() refuses.
  EXPECT_THROW(conn.execute(text("SELECT 1")), InternalError);
  EXPECT_THROW(conn.commit(), PendingRollbackError);
  EXPECT_FALSE(conn.in_transaction());
  EXPECT_EQ(conn.execute(text("SELECT 1")).scalar_one<int>(), 1);
  conn.rollback();

  EXPECT_THROW(conn.execute(text("SELEC 1")), SyntaxError);
  conn.rollback();
  EXPECT_THROW(conn.execute(text("SELECT * FROM missing")), UndefinedTable);
  conn.rollback();
  EXPECT_THROW(conn.execute(text("INSERT INTO t VALUES (2, -1)")), CheckViolation);
  conn.rollback();
  EXPECT_THROW(conn.execute(text("SELECT 1 / :z"), {{"z", 0}}), DataError);
  conn.rollback();
  try {
    conn.execute(text("SELECT :a + :b"), {{"a", 1}});
    FAIL() << "no error";
  } catch (const ArgumentError& e) {
    EXPECT_STREQ(e.what(), "A value is required for bind parameter 'b'");
  }
  // Conversion errors name the column.
  try {
    (void)conn.execute(text("SELECT 'abc'::text AS word")).scalar_one<int>();
    FAIL() << "no error";
  } catch (const ConversionError& e) {
    EXPECT_STREQ(e.what(), "column 0 (\"word\") in row 0: cannot convert 'abc' (type text) to int32_t");
  }
}

// Commit-as-you-go on Connection; engine.begin() commits or rolls back on an exception; an explicit begin()
// inside an open transaction is refused; closing without commit rolls back.
TEST_F(IntegrationClientCore, TransactionsAndSavepoints) {
  auto engine = create_engine(url(), {.pool_size = 1, .max_overflow = 0});
  {
    auto tx = engine.begin();
    tx.execute(text("CREATE TABLE items (name text)"));
    tx.execute(text("INSERT INTO items VALUES (:n)"), {{"n", "kept"}});
    tx.commit();
    EXPECT_FALSE(tx.is_active());
  }
  try {
    auto tx = engine.begin();
    tx.execute(text("INSERT INTO items VALUES ('lost-by-exception')"));
    throw std::runtime_error("app failure");
  } catch (const std::runtime_error&) {
  }
  {
    auto tx = engine.begin();
    tx.execute(text("INSERT INTO items VALUES ('lost-by-scope')"));
  }
  {
    auto conn = engine.connect();
    conn.execute(text("INSERT INTO items VALUES ('lost-by-close')"));
  }
  auto names = [&] { return cluster().psql("SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM items", "app"); };
  EXPECT_EQ(names(), "kept");

  // Savepoints: rolling one back undoes only its part, including a failed statement inside it.
  auto conn = engine.connect();
  {
    auto tx = conn.begin();
    EXPECT_THROW((void)conn.begin(), InvalidRequestError);
    conn.execute(text("INSERT INTO items VALUES ('outer')"));
    {
      auto sp = conn.begin_nested();
      EXPECT_TRUE(conn.in_nested_transaction());
      conn.execute(text("INSERT INTO items VALUES ('inner-rolled-back')"));
      EXPECT_THROW(conn.execute(text("SELECT 1/0")), DataError);
      sp.rollback();
      EXPECT_FALSE(sp.is_active());
    }
    {
      auto sp = tx.begin_nested();
      sp.execute(text("INSERT INTO items VALUES ('inner-released')"));
      {
        auto sp2 = sp.begin_nested();
        sp2.execute(text("INSERT INTO items VALUES ('innermost-dropped')"));
      }  // not committed: rolled back on scope exit
      sp.commit();
    }
    {
      auto sp = conn.begin_nested();
      conn.execute(text("INSERT INTO items VALUES ('released-then-outer-commit')"));
    }  // rolled back
    tx.commit();
  }
  EXPECT_EQ(names(), "inner-released,kept,outer");
  // After commit, a new statement autobegins; begin_nested() with no transaction begins the outer one.
  {
    auto sp = conn.begin_nested();
    EXPECT_TRUE(conn.in_transaction());
    conn.execute(text("INSERT INTO items VALUES ('sp-committed')"));
    sp.commit();
  }
  conn.commit();
  EXPECT_EQ(names(), "inner-released,kept,outer,sp-committed");
  // Status as SQLAlchemy prints it: the one connection is checked out.
  EXPECT_EQ(engine.pool().status(),
            "Pool size: 1  Connections in pool: 0 Current Overflow: 0 Current Checked out connections: 1");
}

// Session: autobegin on first execute, commit/rollback end the transaction and release the connection;
// session.begin() is an RAII guard; autobegin=false requires begin().
TEST_F(IntegrationClientCore, SessionAutobegin) {
  auto engine = create_engine(url(), {.pool_size = 2, .max_overflow = 0});
  {
    Session s(engine);
    s.execute(text("CREATE TABLE members (name text)"));
    EXPECT_TRUE(s.in_transaction());
    s.commit();
    EXPECT_FALSE(s.in_transaction());
    EXPECT_EQ(engine.pool().checkedout(), 0);
    s.execute(text("INSERT INTO members VALUES (:n)"), {{"n", "ann"}});
    s.rollback();
    s.execute(text("INSERT INTO members VALUES (:n)"), {{"n", "bob"}});
    EXPECT_EQ(s.scalar<std::int64_t>(text("SELECT count(*) FROM members")), 1);
    s.commit();
    s.execute(text("INSERT INTO members VALUES ('uncommitted')"));
  }  // destroyed: rolled back
  auto Session = sessionmaker(engine, {.autobegin = false, .expire_on_commit = true});
  auto s = Session();
  EXPECT_THROW(s.execute(text("SELECT 1")), InvalidRequestError);
  {
    auto tx = s.begin();
    EXPECT_THROW((void)s.begin(), InvalidRequestError);
    s.execute(text("INSERT INTO members VALUES ('carl')"));
    tx.commit();
  }
  {
    auto tx = s.begin();
    s.execute(text("INSERT INTO members VALUES ('guard-rolled-back')"));
  }
  {
    auto tx = s.begin();
    auto sp = s.begin_nested();
    s.execute(text("INSERT INTO members VALUES ('savepoint-rolled-back')"));
    sp.rollback();
    EXPECT_EQ(s.scalars<std::string>(text("SELECT name FROM members ORDER BY name")).all(),
              (std::vector<std::string>{"bob", "carl"}));
  }
  EXPECT_EQ(engine.pool().checkedout(), 0);
  EXPECT_EQ(cluster().psql("SELECT string_agg(name, ',' ORDER BY name) FROM members", "app"), "bob,carl");
}

// AUTOCOMMIT engines send no BEGIN; echo logs statements and parameters; DISCARD ALL on return drops
// session state.
TEST_F(IntegrationClientCore, AutocommitEchoAndReset) {
  std::vector<std::string> lines;
  auto engine = create_engine(url("application_name=echo-test"),
                              {.pool_size = 1,
                               .max_overflow = 0,
                               .pool_reset_on_return = ResetOnReturn::kDiscard,
                               .isolation_level = "AUTOCOMMIT",
                               .echo = true,
                               .echo_sink = [&](std::string_view l) { lines.emplace_back(l); }});
  {
    auto conn = engine.connect();
    conn.execute(text("CREATE TABLE a (v int)"));
    conn.execute(text("INSERT INTO a VALUES (:v)"), {{"v", 7}});
    EXPECT_FALSE(conn.in_transaction());
    conn.execute(text("SET search_path TO nowhere"));
  }  // not committed, but AUTOCOMMIT: kept
  EXPECT_EQ(cluster().psql("SELECT v FROM a", "app"), "7");
  EXPECT_EQ(lines.at(1), "INSERT INTO a VALUES (:v)\n[parameters] {'v': 7}");
  auto conn = engine.connect();
  EXPECT_EQ(conn.execute(text("SHOW search_path")).scalar_one<std::string>(), "\"$user\", public");
  EXPECT_EQ(conn.execute(text("SELECT current_setting('application_name')")).scalar_one<std::string>(), "echo-test");

  auto serializable = create_engine(url(), {.isolation_level = "serializable"});
  auto c2 = serializable.connect();
  EXPECT_EQ(c2.execute(text("SHOW transaction_isolation")).scalar_one<std::string>(), "serializable");
}

}  // namespace
}  // namespace pooler::test
