// DaemonProcess: fork/exec of the pooler with its output to a file, readiness by polling connect().
#include "tests/harness/daemon_process.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "tests/harness/net_util.h"

namespace pooler::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kListenDeadline = 20s;
constexpr auto kStopGrace = 10s;

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::filesystem::path pooler_binary() {
  const char* env = std::getenv("POOLER_BINARY");
  if (env != nullptr && *env != '\0') return env;
#ifdef POOLER_BINARY
  return POOLER_BINARY;
#else
  throw std::runtime_error("no pooler binary: set $POOLER_BINARY or build the `pooler` target");
#endif
}

DaemonProcess::DaemonProcess(std::string config_text, std::string listen_addr, int listen_port, DaemonEnv env)
    : temp_("pooler-daemon-"), env_(std::move(env)), listen_addr_(std::move(listen_addr)), port_(listen_port) {
  launch(config_text);
}

DaemonProcess::DaemonProcess(PoolerConfig config, DaemonEnv env) : temp_("pooler-daemon-"), env_(std::move(env)) {
  const bool pick_port = config.listen_port == 0;
  for (int attempt = 1;; ++attempt) {
    if (pick_port) config.listen_port = free_port();
    listen_addr_ = config.listen_addr;
    port_ = config.listen_port;
    try {
      launch(config.to_toml());
      return;
    } catch (const std::runtime_error&) {
      // Another process may have taken the port free_port() found; only then is a retry worth it.
      bool port_taken = log().find("in use") != std::string::npos;
      if (!pick_port || !port_taken || attempt == 3) throw;
      pid_ = -1;
      exited_ = false;
    }
  }
}

void DaemonProcess::launch(const std::string& config_text) {
  config_path_ = temp_.path() / "pooler.toml";
  log_path_ = temp_.path() / "pooler.log";
  std::ofstream(config_path_) << config_text;
  spawn();
  try {
    wait_until_listening();
  } catch (...) {
    stop();
    throw;
  }
}

DaemonProcess::~DaemonProcess() { stop(); }

void DaemonProcess::spawn() {
  std::filesystem::path binary = pooler_binary();
  if (!std::filesystem::exists(binary)) {
    throw std::runtime_error(fmt::format("pooler binary {} does not exist (build the `pooler` target)",
                                         binary.string()));
  }
  std::string binary_str = binary.string();
  std::string config_str = config_path_.string();
  // The child's environment is built before fork: only async-signal-safe calls are allowed after it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [key, value] : env_) replaced = replaced || key == name;
    if (!replaced) env_strings.push_back(std::move(entry));
  }
  for (const auto& [key, value] : env_) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  char* const argv[] = {binary_str.data(), const_cast<char*>("-c"), config_str.data(), nullptr};
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error(fmt::format("open {}: {}", log_path_.string(), std::strerror(errno)));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(null_fd);
    throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    // Die with the test process so a crashed or killed test never leaves a daemon running. (PDEATHSIG
    // follows the forking *thread*; the fixtures create daemons from the main thread.)
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(binary_str.c_str(), argv, envp.data());
    const char message[] = "DaemonProcess: execve failed\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  pid_ = pid;
}

void DaemonProcess::wait_until_listening() {
  const auto deadline = Clock::now() + kListenDeadline;
  for (;;) {
    if (!alive()) {
      throw std::runtime_error(fmt::format("pooler exited with status {} before listening on {}:{}\n--- log ---\n{}",
                                           exit_status_, listen_addr_, port_, log_tail()));
    }
    if (port_accepts(listen_addr_, port_)) return;
    if (Clock::now() >= deadline) {
      throw std::runtime_error(fmt::format("pooler did not listen on {}:{} within {} s\n--- log ---\n{}",
                                           listen_addr_, port_, kListenDeadline.count(), log_tail()));
    }
    std::this_thread::sleep_for(20ms);
  }
}

void DaemonProcess::reap(bool block) {
  if (exited_ || pid_ <= 0) return;
  int status = 0;
  pid_t done;
  do {
    done = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (done < 0 && errno == EINTR);
  if (done == pid_) {
    exited_ = true;
    exit_status_ = decode_status(status);
  }
}

bool DaemonProcess::alive() {
  reap(false);
  return pid_ > 0 && !exited_;
}

bool DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (alive()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

void DaemonProcess::signal(int signo) {
  if (alive()) ::kill(pid_, signo);
}

int DaemonProcess::stop() {
  if (pid_ <= 0) return exit_status_;
  if (alive()) {
    ::kill(pid_, SIGTERM);
    if (!wait_exit(kStopGrace)) {
      ::kill(pid_, SIGKILL);
      reap(true);
    }
  }
  return exit_status_;
}

std::string DaemonProcess::log() const { return read_file(log_path_); }

std::string DaemonProcess::log_tail(std::size_t lines) const { return tail_lines(log(), lines); }

}  // namespace pooler::test
