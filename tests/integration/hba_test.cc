// [[pooler.hba]] access rules against the real daemon, table-driven: each row is a connection attempt (unix
// socket, plain TCP or TLS; user; database) and what the rules as written must do with it — which
// authentication is asked for, or which FATAL 28000 refuses it.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "tests/harness/test_certs.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

enum class Via { kUnix, kTcp, kTls };

// What the rules should do: ask for this authentication request code (0 = trust, 5 = md5, 10 = SASL), or
// refuse with a FATAL 28000 whose message is exactly `refusal`.
struct Row {
  const char* scenario;
  Via via;
  std::string user;
  std::string database;
  int auth_code = -1;
  std::string refusal;
};

class HbaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = std::make_unique<TestCa>();
    IssuedCert server = ca_->issue("pooler", "localhost", true);
    PgClusterOptions options = app_cluster_options();
    for (const char* name : {"bob", "carol", "dave"}) options.roles.push_back({name, std::string(name) + "-pw", false});
    stack_.cluster = std::make_unique<PgCluster>(options);
    stack_.cluster->psql("GRANT ALL ON DATABASE app TO bob, carol, dave");
    socket_dir_ = std::make_unique<TempDir>("pooler-hba-sock-");

    PoolerConfig config = app_pooler_config(*stack_.cluster);
    config.unix_socket_dir = socket_dir_->path().string();
    for (const char* alias : {"reports", "carol"}) {
      PoolerDatabase db = config.databases[0];
      db.name = alias;
      db.dbname = kAppDatabase;
      config.databases.push_back(db);
    }
    for (const char* name : {"bob", "carol", "dave"}) config.users.push_back({name, std::string(name) + "-pw"});
    config.extra_pooler_lines = {
        "[pooler.tls]",
        fmt::format("cert_file = {}", toml_string(server.cert.string())),
        fmt::format("key_file = {}", toml_string(server.key.string())),
    };
    // pg_hba.conf, as [[pooler.hba]] tables.
    const char* rules[][5] = {
        {"local", "\"all\"", "\"app\"", "", "trust"},
        {"host", "\"reports\"", "\"all\"", "all", "reject"},
        {"hostssl", "\"all\"", "\"bob\"", "127.0.0.1/32", "scram-sha-256"},
        {"hostnossl", "\"all\"", "\"bob\"", "127.0.0.1/32", "reject"},
        {"host", "\"app\"", "[\"app\", \"nobody\"]", "127.0.0.0/8", "md5"},
        {"host", "\"sameuser\"", "\"all\"", "127.0.0.1/32", "trust"},
        {"host", "\"all\"", "\"dave\"", "10.0.0.0/8", "trust"},
        {"host", "\"carol\"", "\"dave\"", "samenet", "trust"},
        {"host", "\"app\"", "\"dave\"", "samehost", "md5"},
    };
    for (const auto& r : rules) {
      config.extra_pooler_lines.push_back("[[pooler.hba]]");
      config.extra_pooler_lines.push_back(fmt::format("type = \"{}\"", r[0]));
      config.extra_pooler_lines.push_back(fmt::format("database = {}", r[1]));
      config.extra_pooler_lines.push_back(fmt::format("user = {}", r[2]));
      if (*r[3] != '\0') config.extra_pooler_lines.push_back(fmt::format("address = \"{}\"", r[3]));
      config.extra_pooler_lines.push_back(fmt::format("method = \"{}\"", r[4]));
    }
    stack_.daemon = std::make_unique<DaemonProcess>(config);
  }
  static void TearDownTestSuite() {
    stack_.reset();
    socket_dir_.reset();
    ca_.reset();
  }
  void TearDown() override { dump_logs_on_failure(stack_); }

  static std::string libpq_conninfo(const Row& row, const std::string& password) {
    const std::string host = row.via == Via::kUnix ? socket_dir_->path().string() : "127.0.0.1";
    return fmt::format("host={} port={} user={} password={} dbname={} sslmode={} gssencmode=disable "
                       "connect_timeout=20",
                       quote_conninfo_value(host), stack_.daemon->port(), quote_conninfo_value(row.user),
                       quote_conninfo_value(password), quote_conninfo_value(row.database),
                       row.via == Via::kTls ? "require" : "disable");
  }

  static inline Stack stack_;
  static inline std::unique_ptr<TestCa> ca_;
  static inline std::unique_ptr<TempDir> socket_dir_;
};

std::string no_entry(const std::string& host, const std::string& user, const std::string& db, bool ssl) {
  return fmt::format("no pooler.hba entry for host \"{}\", user \"{}\", database \"{}\", {}", host, user, db,
                     ssl ? "SSL encryption" : "no encryption");
}

std::string rejects(const std::string& host, const std::string& user, const std::string& db, bool ssl) {
  return fmt::format("pooler.hba rejects connection for host \"{}\", user \"{}\", database \"{}\", {}", host, user,
                     db, ssl ? "SSL encryption" : "no encryption");
}

// Every row of the table, in turn. Plain TCP rows look at the first authentication message on the wire;
// unix-socket and TLS rows go through libpq and compare the outcome and error text.
TEST_F(HbaTest, RulesAdmitAndRejectAsWritten) {
  const std::vector<Row> rows = {
      {"md5 rule for app on 127/8", Via::kTcp, "app", "app", 5, ""},
      {"reject rule for the reports database comes first", Via::kTcp, "app", "reports", -1,
       rejects("127.0.0.1", "app", "reports", false)},
      {"hostnossl reject for bob without TLS", Via::kTcp, "bob", "app", -1, rejects("127.0.0.1", "bob", "app", false)},
      {"sameuser: carol to database carol is trusted", Via::kTcp, "carol", "carol", 0, ""},
      {"no rule for carol to app", Via::kTcp, "carol", "app", -1, no_entry("127.0.0.1", "carol", "app", false)},
      {"dave misses 10/8 and matches samehost (127.0.0.1 is this host's)", Via::kTcp, "dave", "app", 5, ""},
      {"dave to carol matches samenet (lo's 127.0.0.0/8)", Via::kTcp, "dave", "carol", 0, ""},
      {"no rule for dave to reports: its reject rule comes first", Via::kTcp, "dave", "reports", -1,
       rejects("127.0.0.1", "dave", "reports", false)},
      {"a user listed in a rule but not in [users] still matches it", Via::kTcp, "nobody", "app", -1,
       "role \"nobody\" does not exist"},
      {"hostssl scram for bob over TLS", Via::kTls, "bob", "app", 10, ""},
      {"no rule for carol to app over TLS either", Via::kTls, "carol", "app", -1,
       no_entry("127.0.0.1", "carol", "app", true)},
      {"local trust for app", Via::kUnix, "app", "app", 0, ""},
      {"no local rule for bob", Via::kUnix, "bob", "app", -1, no_entry("[local]", "bob", "app", false)},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.scenario);
    if (row.via == Via::kTcp) {
      RawClient raw(stack_.daemon->listen_addr(), stack_.daemon->port());
      ASSERT_TRUE(raw.send(wire::startup_message({{"user", row.user}, {"database", row.database}})));
      std::optional<BackendMessage> first = raw.read_message();
      ASSERT_TRUE(first.has_value()) << "closed without a message";
      if (row.auth_code >= 0) {
        ASSERT_EQ(first->type, 'R') << parse_error_fields(first->body).describe();
        ASSERT_GE(first->body.size(), 4u);
        const auto* b = reinterpret_cast<const unsigned char*>(first->body.data());
        EXPECT_EQ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3], row.auth_code);
      } else {
        ASSERT_EQ(first->type, 'E');
        ErrorFields e = parse_error_fields(first->body);
        EXPECT_EQ(e.sqlstate(), "28000");
        EXPECT_EQ(e.severity(), "FATAL");
        EXPECT_EQ(e.message(), row.refusal);
        EXPECT_TRUE(raw.wait_closed());
      }
      continue;
    }
    // libpq: the right password logs in when a password method is expected; trust admits a wrong one.
    const std::string password = row.auth_code == 0 ? "not-the-password" : row.user + "-pw";
    PgConnPtr conn = try_connect(libpq_conninfo(row, row.user == "app" ? (row.auth_code == 0 ? password : kAppPassword)
                                                                      : password));
    if (row.auth_code >= 0) {
      ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
      EXPECT_EQ(PQsslInUse(conn.get()), row.via == Via::kTls ? 1 : 0);
      EXPECT_EQ(query_value(conn.get(), "SELECT current_user"), row.user);
      if (row.auth_code == 10) {
        PgConnPtr wrong = try_connect(libpq_conninfo(row, "wrong"));
        EXPECT_EQ(PQstatus(wrong.get()), CONNECTION_BAD);
        EXPECT_NE(std::string(PQerrorMessage(wrong.get())).find("password authentication failed"), std::string::npos)
            << PQerrorMessage(wrong.get());
      }
    } else {
      EXPECT_EQ(PQstatus(conn.get()), CONNECTION_BAD);
      EXPECT_NE(std::string(PQerrorMessage(conn.get())).find(row.refusal), std::string::npos)
          << PQerrorMessage(conn.get());
    }
  }
  EXPECT_TRUE(daemon_serves(stack_)) << "the daemon keeps serving after the refusals";
}

// A reload that changes the rules applies them to the next login; a connected client is not re-judged.
TEST_F(HbaTest, ReloadAppliesNewRulesToNewLogins) {
  Row carol{"carol to app", Via::kTcp, "carol", "app", -1, ""};
  PgConnPtr before = connect(pooler_conninfo(*stack_.daemon));  // app via md5, allowed throughout
  std::string text = read_file(stack_.daemon->config_path());
  text += "\n[[pooler.hba]]\ntype = \"host\"\ndatabase = \"all\"\nuser = \"carol\"\naddress = \"127.0.0.1/32\"\n"
          "method = \"scram-sha-256\"\n";
  {
    std::ofstream out(stack_.daemon->config_path(), std::ios::trunc);
    out << text;
  }
  ASSERT_TRUE(sighup_until(*stack_.daemon, "event=reloaded"));
  PgConnPtr conn = connect(libpq_conninfo(carol, "carol-pw"));
  EXPECT_EQ(query_value(conn.get(), "SELECT current_user"), "carol");
  EXPECT_EQ(query_value(before.get(), "SELECT 1"), "1");
}

}  // namespace
}  // namespace pooler::test
