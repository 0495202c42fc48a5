// The pooler's command line: --version, --help, --check-config on good and bad files, -c with a missing
// file, and a clean exit on SIGTERM.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "tests/harness/run_command.h"
#include "tests/harness/temp_dir.h"
#include "tests/integration/integration_support.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

class IntegrationCli : public ::testing::Test {
 protected:
  CommandResult pooler(std::vector<std::string> args) {
    args.insert(args.begin(), pooler_binary().string());
    last_argv_ = args;
    return run_command(args, 30s);
  }
  // Writes a config file in the test's temp dir; returns its path.
  std::filesystem::path write_config(const std::string& name, const std::string& text) {
    auto path = dir_.path() / name;
    std::ofstream(path) << text;
    return path;
  }
  std::string why(const CommandResult& result) const { return describe(last_argv_, result); }

  TempDir dir_{"pooler-cli-"};
  std::vector<std::string> last_argv_;
};

// A valid config as the tests write it, with a fixed port (it is only checked, never listened on).
std::string good_config() {
  PoolerConfig config;
  config.listen_port = 6432;
  PoolerDatabase db;
  db.port = 5432;
  config.databases.push_back(db);
  config.users.push_back({});
  return config.to_toml();
}

// --version exits 0 and prints a version number.
TEST_F(IntegrationCli, Version) {
  CommandResult result = pooler({"--version"});
  EXPECT_EQ(result.exit_code, 0) << why(result);
  EXPECT_TRUE(std::regex_search(result.out, std::regex(R"(\d+\.\d+\.\d+)"))) << why(result);
}

// --help exits 0 and documents the options.
TEST_F(IntegrationCli, Help) {
  CommandResult result = pooler({"--help"});
  EXPECT_EQ(result.exit_code, 0) << why(result);
  EXPECT_NE(result.out.find("--check-config"), std::string::npos) << why(result);
  EXPECT_NE(result.out.find("-c"), std::string::npos) << why(result);
}

// --check-config accepts a valid file with exit 0.
TEST_F(IntegrationCli, CheckConfigAcceptsGoodFile) {
  auto path = write_config("good.toml", good_config());
  CommandResult result = pooler({"--check-config", path.string()});
  EXPECT_EQ(result.exit_code, 0) << why(result);
}

// --check-config accepts the shipped pooler.toml.example.
TEST_F(IntegrationCli, CheckConfigAcceptsShippedExample) {
  std::filesystem::path example = std::filesystem::path(POOLER_SOURCE_DIR) / "pooler.toml.example";
  if (!std::filesystem::exists(example)) GTEST_SKIP() << example << " not present";
  CommandResult result = pooler({"--check-config", example.string()});
  EXPECT_EQ(result.exit_code, 0) << why(result);
}

// An unknown key fails the check, naming file:line:column and the key.
TEST_F(IntegrationCli, CheckConfigRejectsUnknownKey) {
  auto path = write_config("unknown.toml", "[pooler]\nlisten_port = 6432\nbogus_key = 1\n");
  CommandResult result = pooler({"--check-config", path.string()});
  EXPECT_NE(result.exit_code, 0) << why(result);
  EXPECT_NE(result.err.find(path.string() + ":3:"), std::string::npos) << why(result);
  EXPECT_NE(result.err.find("bogus_key"), std::string::npos) << why(result);
}

// A value of the wrong type fails the check, naming file:line:column and the key.
TEST_F(IntegrationCli, CheckConfigRejectsWrongType) {
  auto path = write_config("type.toml", "[pooler]\nlisten_addr = \"127.0.0.1\"\nlisten_port = \"not a number\"\n");
  CommandResult result = pooler({"--check-config", path.string()});
  EXPECT_NE(result.exit_code, 0) << why(result);
  EXPECT_NE(result.err.find(path.string() + ":3:"), std::string::npos) << why(result);
  EXPECT_NE(result.err.find("listen_port"), std::string::npos) << why(result);
}

// Starting with a bad config exits non-zero with the same precise message, without listening.
TEST_F(IntegrationCli, RunWithBadConfigFails) {
  auto path = write_config("bad.toml", "[pooler]\nlisten_port = 6432\nmax_client_conn = \"many\"\n");
  CommandResult result = pooler({"-c", path.string()});
  EXPECT_FALSE(result.timed_out) << why(result);
  EXPECT_NE(result.exit_code, 0) << why(result);
  EXPECT_NE(result.err.find(path.string() + ":3:"), std::string::npos) << why(result);
  EXPECT_NE(result.err.find("max_client_conn"), std::string::npos) << why(result);
}

// A config file that does not exist is reported by name and the process exits non-zero.
TEST_F(IntegrationCli, MissingConfigFile) {
  CommandResult result = pooler({"-c", "/nonexistent/pooler.toml"});
  EXPECT_FALSE(result.timed_out) << why(result);
  EXPECT_NE(result.exit_code, 0) << why(result);
  EXPECT_NE(result.err.find("/nonexistent/pooler.toml"), std::string::npos) << why(result);
}

// An unknown command-line argument is a usage error.
TEST_F(IntegrationCli, UnknownArgument) {
  CommandResult result = pooler({"--no-such-option"});
  EXPECT_NE(result.exit_code, 0) << why(result);
  EXPECT_FALSE(result.err.empty()) << why(result);
}

// A running daemon with no clients exits 0 on SIGTERM.
TEST_F(IntegrationCli, SigtermExitsCleanly) {
  Stack stack;
  stack.start();
  ASSERT_TRUE(daemon_serves(stack));
  stack.daemon->signal(SIGTERM);
  EXPECT_TRUE(stack.daemon->wait_exit(15s)) << stack.daemon->log_tail();
  EXPECT_EQ(stack.daemon->stop(), 0) << stack.daemon->log_tail();
}

}  // namespace
}  // namespace pooler::test
