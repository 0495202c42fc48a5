// pooler's command line: pooler [-c FILE] [--check-config [FILE]] [--version] [--help].
#include <spdlog/spdlog.h>
#include <sysexits.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/logging.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/pooler/pooler.toml";

void print_help(std::FILE* out) {
  std::fprintf(out,
               "pooler %s - PostgreSQL connection pooler\n"
               "\n"
               "Usage:\n"
               "  pooler [-c] FILE              run in the foreground, logging to stderr\n"
               "  pooler --check-config [FILE]  validate the config and exit (0 = valid)\n"
               "  pooler --version              print the version\n"
               "  pooler --help                 this text\n"
               "\n"
               "FILE defaults to %s. Exit codes: 0 success, 64 usage error, 78 config error,\n"
               "1 runtime failure (e.g. cannot listen).\n",
               POOLER_VERSION, kDefaultConfig);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = kDefaultConfig;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      print_help(stdout);
      return 0;
    }
    if (a == "--version" || a == "-V") {
      std::printf("pooler %s\n", POOLER_VERSION);
      return 0;
    }
    if (a == "-c" || a == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pooler: %s needs a file name\n", argv[i]);
        return EX_USAGE;
      }
      config_path = argv[++i];
      continue;
    }
    if (a == "--check-config") {
      check_only = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') config_path = argv[++i];
      continue;
    }
    if (a.empty() || a[0] == '-') {
      std::fprintf(stderr, "pooler: unknown argument '%s' (see pooler --help)\n", argv[i]);
      return EX_USAGE;
    }
    // A bare file name, as PgBouncer takes it: pooler pooler.toml
    config_path = argv[i];
  }

  auto cfg = pooler::config::load_file(config_path);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "pooler: %zu error(s) in %s\n", cfg.error().size(), config_path.c_str());
    return EX_CONFIG;
  }
  if (check_only) {
    std::printf("%s: ok (%zu databases, %zu users)\n", config_path.c_str(), cfg->databases.size(), cfg->users.size());
    return 0;
  }
  pooler::daemon::setup_logging(cfg->pooler.log_format, cfg->pooler.log_level);
  spdlog::info("event=starting version={} config={}", POOLER_VERSION, config_path);
  pooler::daemon::Daemon daemon(std::move(*cfg));
  return daemon.run();
}
