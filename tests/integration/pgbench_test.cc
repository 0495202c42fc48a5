// Real clients through the pooler in session mode: pgbench initialisation (COPY) and runs in the simple,
// extended and prepared protocols with no failed transactions, and psql.
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/harness/run_command.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

constexpr int kClients = 4;
constexpr int kTransactionsPerClient = 100;

class IntegrationPgbench : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_.start([](PoolerConfig& config) {
      config.databases[0].pool_size = 5;
      config.databases[0].max_overflow = 5;
    });
  }
  static void TearDownTestSuite() { stack_.reset(); }
  void TearDown() override { dump_logs_on_failure(stack_); }

  // Runs a PostgreSQL client program against the pooler as app/secret; libpq's defaults (sslmode=prefer)
  // stay on, so the SSLRequest → 'N' path is exercised too.
  static CommandResult through_pooler(std::vector<std::string> argv, const std::string& input = "") {
    std::vector<std::string> connection = {"-h", stack_.daemon->listen_addr(), "-p",
                                           std::to_string(stack_.daemon->port()), "-U", kAppUser};
    argv.insert(argv.begin() + 1, connection.begin(), connection.end());
    CommandOptions options;
    options.env = {{"PGPASSWORD", kAppPassword}, {"PGCONNECT_TIMEOUT", "20"}};
    options.timeout = 180s;
    options.input = input;
    last_argv_ = argv;
    return run_command(argv, options);
  }
  static std::string why(const CommandResult& result) { return describe(last_argv_, result); }

  // pgbench -i -s 1 through the pooler: drops/creates tables, loads 100 000 rows with COPY, vacuums, adds keys.
  static void initialize() {
    CommandResult result = through_pooler({"pgbench", "-i", "-s", "1", "-q", kAppDatabase});
    ASSERT_EQ(result.exit_code, 0) << why(result);
    ASSERT_EQ(stack_.cluster->psql("SELECT count(*) FROM pgbench_accounts", kAppDatabase), "100000");
  }

  static void run_mode(const std::string& mode) {
    ASSERT_NO_FATAL_FAILURE(initialize());
    CommandResult result =
        through_pooler({"pgbench", "-M", mode, "-c", std::to_string(kClients), "-j", "2", "-t",
                        std::to_string(kTransactionsPerClient), "--no-vacuum", kAppDatabase});
    ASSERT_EQ(result.exit_code, 0) << why(result);
    const int total = kClients * kTransactionsPerClient;
    EXPECT_NE(result.out.find("number of transactions actually processed: " + std::to_string(total) + "/" +
                              std::to_string(total)),
              std::string::npos)
        << why(result);
    EXPECT_NE(result.out.find("number of failed transactions: 0 "), std::string::npos) << why(result);
    // The server saw the work: one history row per transaction.
    EXPECT_EQ(stack_.cluster->psql("SELECT count(*) FROM pgbench_history", kAppDatabase), std::to_string(total));
  }

  inline static Stack stack_;
  inline static std::vector<std::string> last_argv_;
};

// pgbench -i -s 1 completes through the pooler (COPY FROM STDIN of 100 000 rows, VACUUM, primary keys).
TEST_F(IntegrationPgbench, Initialize) { initialize(); }

// pgbench -M simple: every transaction processed, none failed.
TEST_F(IntegrationPgbench, SimpleProtocol) { run_mode("simple"); }

// pgbench -M extended: every transaction processed, none failed.
TEST_F(IntegrationPgbench, ExtendedProtocol) { run_mode("extended"); }

// pgbench -M prepared: every transaction processed, none failed.
TEST_F(IntegrationPgbench, PreparedProtocol) { run_mode("prepared"); }

// psql -c 'select 1' through the pooler prints 1.
TEST_F(IntegrationPgbench, PsqlSelectOne) {
  CommandResult result = through_pooler({"psql", "-X", "-A", "-t", "-d", kAppDatabase, "-c", "select 1"});
  EXPECT_EQ(result.exit_code, 0) << why(result);
  EXPECT_EQ(result.out, "1\n") << why(result);
}

// A psql script with a transaction, inline COPY data, an error and a meta-command runs as it would directly.
TEST_F(IntegrationPgbench, PsqlScript) {
  const std::string script =
      "CREATE TEMP TABLE s(v int);\n"
      "BEGIN;\n"
      "INSERT INTO s VALUES (1), (2);\n"
      "COMMIT;\n"
      "COPY s FROM STDIN;\n"
      "3\n"
      "4\n"
      "\\.\n"
      "SELECT 1/0;\n"
      "\\echo after-error\n"
      "SELECT sum(v) FROM s;\n";
  CommandResult result = through_pooler({"psql", "-X", "-A", "-t", "-q", "-d", kAppDatabase, "-f", "-"}, script);
  EXPECT_EQ(result.exit_code, 0) << why(result);  // without ON_ERROR_STOP psql carries on
  EXPECT_NE(result.err.find("division by zero"), std::string::npos) << why(result);
  EXPECT_NE(result.out.find("after-error\n10\n"), std::string::npos) << why(result);
}

}  // namespace
}  // namespace pooler::test
