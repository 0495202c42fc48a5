// Every supported parameter type round-trips exactly through a table, directly and through the pooler
// daemon (transaction mode), and the library's basic flow works through the daemon.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "tests/client/client_fixture.h"

namespace pooler::test {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

struct Sample {
  std::int16_t i2;
  std::int32_t i4;
  std::int64_t i8;
  float f4;
  double f8;
  bool b;
  std::string s;
  Bytes by;
  sys_time<microseconds> ts;
  year_month_day d;
  Uuid u;
  Numeric n;
  Json j;
  Jsonb jb;
  std::vector<std::int64_t> ai;
  std::vector<std::string> at;
  std::vector<std::optional<double>> af;
  std::optional<std::int32_t> maybe;
};

std::vector<Sample> samples() {
  Bytes all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<std::byte>(i));
  return {
      Sample{std::numeric_limits<std::int16_t>::min(), std::numeric_limits<std::int32_t>::max(),
             std::numeric_limits<std::int64_t>::min(), 1.17549435e-38f, 0.1, true,
             "unicode ☃ 'quotes' \"double\" \\back\\ {braces} ,commas, NULL", all_bytes,
             sys_days{year{2024} / 2 / 29} + 23h + 59min + 59s + 999999us, year{2024} / 2 / 29,
             Uuid::parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), Numeric{"12345678901234567890.000000000000000001"},
             Json{R"({"b": [1, 2.5, null], "a": "x"})"}, Jsonb{R"({"a": "x", "b": [1, 2.5, null]})"},
             {std::numeric_limits<std::int64_t>::max(), -1, 0}, {"a,b", "q\"uote", "back\\slash", "NULL", "", "{}"},
             {1.5, std::nullopt, -0.25}, 42},
      Sample{0, 0, 0, -0.0f, std::numeric_limits<double>::max(), false, "", Bytes{},
             sys_seconds{-86400s * 365 * 30} , year{1900} / 1 / 1, Uuid{}, Numeric{"-0.5"}, Json{"null"},
             Jsonb{"null"}, {}, {}, {}, std::nullopt},
  };
}

// Inserts every sample with bound parameters and reads each back, field by field.
void round_trip(const std::string& url) {
  auto engine = create_engine(url);
  auto conn = engine.connect();
  conn.execute(text("DROP TABLE IF EXISTS typed"));
  conn.execute(text(R"(CREATE TABLE typed (
      id serial PRIMARY KEY, i2 smallint, i4 int, i8 bigint, f4 real, f8 double precision, b boolean, s text,
      by bytea, ts timestamptz, d date, u uuid, n numeric, j json, jb jsonb, ai bigint[], at text[],
      af double precision[], maybe int))"));
  for (const Sample& x : samples()) {
    conn.execute(text("INSERT INTO typed (i2, i4, i8, f4, f8, b, s, by, ts, d, u, n, j, jb, ai, at, af, maybe) "
                      "VALUES (:i2, :i4, :i8, :f4, :f8, :b, :s, :by, :ts, :d, :u, :n, :j, :jb, :ai, :at, :af, :maybe)"),
                 {{"i2", x.i2}, {"i4", x.i4}, {"i8", x.i8}, {"f4", x.f4}, {"f8", x.f8}, {"b", x.b}, {"s", x.s},
                  {"by", x.by}, {"ts", x.ts}, {"d", x.d}, {"u", x.u}, {"n", x.n}, {"j", x.j}, {"jb", x.jb},
                  {"ai", x.ai}, {"at", x.at}, {"af", x.af}, {"maybe", x.maybe}});
  }
  conn.commit();
  // A session time zone far from UTC must not shift timestamps.
  conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"));
  auto rows = conn.execute(text("SELECT * FROM typed ORDER BY id")).all();
  auto expected = samples();
  ASSERT_EQ(rows.size(), expected.size());
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const Row& r = rows[k];
    const Sample& x = expected[k];
    SCOPED_TRACE("sample " + std::to_string(k));
    EXPECT_EQ(r.get<std::int16_t>("i2"), x.i2);
    EXPECT_EQ(r.get<std::int32_t>("i4"), x.i4);
    EXPECT_EQ(r.get<std::int64_t>("i8"), x.i8);
    EXPECT_EQ(r.get<float>("f4"), x.f4);
    EXPECT_EQ(std::signbit(r.get<float>("f4")), std::signbit(x.f4));
    EXPECT_EQ(r.get<double>("f8"), x.f8);
    EXPECT_EQ(r.get<bool>("b"), x.b);
    EXPECT_EQ(r.get<std::string>("s"), x.s);
    EXPECT_EQ(r.get<Bytes>("by"), x.by);
    EXPECT_EQ(r.get<sys_time<microseconds>>("ts"), x.ts);
    EXPECT_EQ(r.get<year_month_day>("d"), x.d);
    EXPECT_EQ(r.get<Uuid>("u"), x.u);
    EXPECT_EQ(r.get<Numeric>("n"), x.n);
    EXPECT_EQ(r.get<Json>("j"), x.j);  // json keeps the text as given
    EXPECT_EQ(r.get<std::vector<std::int64_t>>("ai"), x.ai);
    EXPECT_EQ(r.get<std::vector<std::string>>("at"), x.at);
    EXPECT_EQ(r.get<std::vector<std::optional<double>>>("af"), x.af);
    EXPECT_EQ(r.get<std::optional<std::int32_t>>("maybe"), x.maybe);
  }
  // jsonb normalises; compare as documents on the server.
  EXPECT_TRUE(conn.execute(text("SELECT bool_and(jb = j::jsonb) FROM typed")).scalar_one<bool>());
  // Parameters in WHERE clauses: array membership, uuid and timestamp comparison, NULL tests.
  EXPECT_EQ(conn.execute(text("SELECT count(*) FROM typed WHERE i8 = ANY(:ids) AND u = :u AND ts = :ts"),
                         {{"ids", std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 5}},
                          {"u", expected[0].u},
                          {"ts", expected[0].ts}})
                .scalar_one<std::int64_t>(),
            1);
  EXPECT_EQ(conn.execute(text("SELECT count(*) FROM typed WHERE maybe IS NOT DISTINCT FROM :m"),
                         {{"m", std::optional<int>{}}})
                .scalar_one<std::int64_t>(),
            1);
  // Values the server computes decode too.
  EXPECT_EQ(conn.execute(text("SELECT :t::timestamptz + interval '1 hour'"), {{"t", expected[0].ts}})
                .scalar_one<sys_time<microseconds>>(),
            expected[0].ts + 1h);
  EXPECT_EQ(conn.execute(text("SELECT gen_random_uuid()")).scalar_one<Uuid>().bytes[6] >> 4, 4);
}

class IntegrationClientTypes : public ClientClusterTest {};

// Directly against PostgreSQL.
TEST_F(IntegrationClientTypes, RoundTripDirect) { round_trip(url()); }

#ifdef POOLER_HAVE_DAEMON
// Through the pooler daemon in transaction mode: the same round trip, then transactions, savepoints and
// errors behave the same.
TEST_F(IntegrationClientTypes, RoundTripThroughDaemon) {
  DaemonProcess daemon(transaction_mode_config());
  round_trip(daemon_url(daemon));

  auto engine = create_engine(daemon_url(daemon), {.pool_size = 3});
  {
    auto tx = engine.begin();
    tx.execute(text("CREATE TABLE notes (body text UNIQUE)"));
    tx.execute(text("INSERT INTO notes VALUES (:b)"), {{"b", "kept"}});
    auto sp = tx.begin_nested();
    tx.execute(text("INSERT INTO notes VALUES (:b)"), {{"b", "undone"}});
    sp.rollback();
    tx.commit();
  }
  Session session(engine);
  EXPECT_THROW(session.execute(text("INSERT INTO notes VALUES ('kept')")), UniqueViolation);
  session.rollback();
  EXPECT_EQ(session.scalars<std::string>(text("SELECT body FROM notes")).all(), std::vector<std::string>{"kept"});
  session.commit();
}
#endif

}  // namespace
}  // namespace pooler::test
