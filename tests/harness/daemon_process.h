// Runs the real pooler binary for integration tests: config in a temp file, output in a log file, ready
// once its listen port accepts TCP, stopped (and never left behind) when the object goes away.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "tests/harness/pooler_config.h"
#include "tests/harness/temp_dir.h"

namespace pooler::test {

// The pooler executable: $POOLER_BINARY if set, else the path CMake compiled in (POOLER_BINARY); throws when
// neither exists, so tests fail with a clear message before the daemon target exists.
std::filesystem::path pooler_binary();

// Variables added to (or replacing entries of) the environment the daemon inherits, e.g. NOTIFY_SOCKET.
using DaemonEnv = std::vector<std::pair<std::string, std::string>>;

class DaemonProcess {
 public:
  // Starts `pooler -c <file>` with this config text and waits until listen_addr:listen_port accepts TCP
  // (deadline 20 s). Throws with the daemon's log if it exits first or never listens.
  DaemonProcess(std::string config_text, std::string listen_addr, int listen_port, DaemonEnv env = {});
  // Renders the config; a listen_port of 0 is replaced by a free port first.
  explicit DaemonProcess(PoolerConfig config, DaemonEnv env = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status like a shell (code, or 128 + signal).
  // Later calls return the same status.
  int stop();
  void signal(int signo);
  // Waits up to `timeout` for the process to exit by itself; returns whether it did.
  bool wait_exit(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  bool alive();
  int port() const { return port_; }
  const std::string& listen_addr() const { return listen_addr_; }
  const std::filesystem::path& config_path() const { return config_path_; }
  // Everything the daemon wrote to stdout and stderr so far.
  std::string log() const;
  std::string log_tail(std::size_t lines = 60) const;

 private:
  void launch(const std::string& config_text);
  void spawn();
  void wait_until_listening();
  void reap(bool block);

  TempDir temp_;
  DaemonEnv env_;
  std::string listen_addr_;
  int port_ = 0;
  std::filesystem::path config_path_;
  std::filesystem::path log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_status_ = -1;
};

}  // namespace pooler::test
