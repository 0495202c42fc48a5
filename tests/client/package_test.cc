// The library as users get it: the example program runs against a real server, and after `cmake --install`
// an out-of-tree project finds it with find_package(pooler), builds, links and runs; pkg-config knows it.
#include <gtest/gtest.h>

#include "tests/client/client_fixture.h"
#include "tests/harness/run_command.h"
#include "tests/harness/temp_dir.h"

namespace pooler::test {
namespace {

using namespace std::chrono_literals;

class IntegrationClientPackage : public ClientClusterTest {};

// client/examples/quickstart runs to completion against the test server.
TEST_F(IntegrationClientPackage, ExampleRuns) {
  std::vector<std::string> argv = {POOLER_CLIENT_EXAMPLE, url()};
  CommandResult r = run_command(argv, 60s);
  ASSERT_EQ(r.exit_code, 0) << describe(argv, r);
  EXPECT_NE(r.out.find("user 1 ann\nuser 2 bob\nduplicate refused: SQLSTATE 23505\nusers: 2\n"), std::string::npos)
      << r.out;
}

constexpr const char* kOrmExampleOutput =
    "ann has id 1\nactive: root\nactive: ann\nadmin: bob\nadmin: root\nactive users: 2\nann wrote hello\n"
    "ann wrote again\nidentity map: same object\nann: 2 posts\nroot: 0 posts\nbob: 0 posts\n"
    "duplicate refused: SQLSTATE 23505\nusers: 3\n";

// client/examples/orm_quickstart runs to completion against the test server.
TEST_F(IntegrationClientPackage, OrmExampleRuns) {
  std::vector<std::string> argv = {POOLER_ORM_EXAMPLE, url()};
  CommandResult r = run_command(argv, 60s);
  ASSERT_EQ(r.exit_code, 0) << describe(argv, r);
  EXPECT_EQ(r.out, kOrmExampleOutput);
}

#ifdef POOLER_HAVE_DAEMON
// The same ORM example through the pooler daemon in transaction mode: same output.
TEST_F(IntegrationClientPackage, OrmExampleRunsThroughDaemon) {
  DaemonProcess daemon(transaction_mode_config());
  std::vector<std::string> argv = {POOLER_ORM_EXAMPLE, daemon_url(daemon)};
  CommandResult r = run_command(argv, 60s);
  ASSERT_EQ(r.exit_code, 0) << describe(argv, r) << daemon.log();
  EXPECT_EQ(r.out, kOrmExampleOutput);
}
#endif

// cmake --install (component client), then find_package(pooler) from a separate project; pkg-config too.
TEST_F(IntegrationClientPackage, InstalledPackageWorksOutOfTree) {
  TempDir dir("pooler-client-package-");
  const std::string prefix = (dir.path() / "prefix").string();
  const std::string build = (dir.path() / "build").string();
  auto run = [](const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 300s) {
    CommandResult r = run_command(argv, timeout);
    EXPECT_EQ(r.exit_code, 0) << describe(argv, r);
    return r;
  };
  run({"cmake", "--install", POOLER_BINARY_DIR, "--prefix", prefix, "--component", "client"});
  run({"cmake", "-S", POOLER_CONSUMER_SOURCE_DIR, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix,
       "-DCMAKE_BUILD_TYPE=Debug", std::string("-DCMAKE_CXX_FLAGS=") + POOLER_CONSUMER_FLAGS,
       std::string("-DCMAKE_EXE_LINKER_FLAGS=") + POOLER_CONSUMER_FLAGS});
  run({"cmake", "--build", build, "-j2"});
  CommandResult out = run({build + "/consumer", url()}, 60s);
  EXPECT_EQ(out.out, "consumer ok 42\n");

  CommandOptions env;
  env.env = {{"PKG_CONFIG_PATH", prefix + "/lib/pkgconfig:" + prefix + "/lib/x86_64-linux-gnu/pkgconfig"}};
  std::vector<std::string> argv = {"pkg-config", "--cflags", "--libs", "pooler-client"};
  CommandResult pc = run_command(argv, env);
  ASSERT_EQ(pc.exit_code, 0) << describe(argv, pc);
  EXPECT_NE(pc.out.find("-lpooler-client"), std::string::npos) << pc.out;
  EXPECT_NE(pc.out.find("-lpq"), std::string::npos) << pc.out;
}

}  // namespace
}  // namespace pooler::test
