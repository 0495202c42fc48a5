// fork/exec runner behind run_command(): no shell, so arguments reach the program exactly as given.
#include "tests/harness/run_command.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <algorithm>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

extern char** environ;

namespace pooler::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (;;) {
    std::size_t end = std::min(dirs.find(':'), dirs.size());
    std::string_view dir = dirs.substr(0, end);
    std::filesystem::path candidate = std::filesystem::path(dir.empty() ? std::string_view(".") : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (end == dirs.size()) break;
    dirs.remove_prefix(end + 1);
  }
  throw std::runtime_error(fmt::format("run_command: {} not found in PATH", name));
}

std::vector<std::string> build_environment(const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view item(*entry);
    bool overridden = false;
    for (const auto& [key, value] : extra) {
      if (item.size() > key.size() && item.starts_with(key) && item[key.size()] == '=') overridden = true;
    }
    if (!overridden) env.emplace_back(item);
  }
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Reads what is available; returns false once the pipe reports EOF or an error.
bool drain(int fd, std::string& into) {
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      into.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options) {
  if (argv.empty()) throw std::invalid_argument("run_command: empty argv");
  // Writing stdin to a child that exited early must give EPIPE, not kill the test process.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });

  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls are allowed
  // because other test threads may hold locks.
  std::string program = resolve_program(argv[0]);
  std::vector<std::string> args = argv;
  std::vector<std::string> env = build_environment(options.env);
  std::vector<char*> c_args = c_strings(args);
  std::vector<char*> c_env = c_strings(env);

  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 || ::pipe2(in_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(fmt::format("run_command: pipe: {}", std::strerror(errno)));
  }

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("run_command: fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execve(program.c_str(), c_args.data(), c_env.data());
    const char message[] = "run_command: execve failed\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(in_pipe[0]);
  set_nonblocking(out_pipe[0]);
  set_nonblocking(err_pipe[0]);
  set_nonblocking(in_pipe[1]);

  CommandResult result;
  std::size_t input_written = 0;
  int in_fd = in_pipe[1];
  if (options.input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  bool out_open = true, err_open = true;
  bool exited = false;
  int status = 0;
  const auto deadline = Clock::now() + options.timeout;

  for (;;) {
    if (!exited) {
      pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) exited = true;
    }
    if (exited) {
      // A grandchild (a daemon the program started) may keep the pipes open; do not wait for it.
      if (out_open) drain(out_pipe[0], result.out);
      if (err_open) drain(err_pipe[0], result.err);
      break;
    }
    auto now = Clock::now();
    if (now >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[3];
    nfds_t count = 0;
    if (out_open) fds[count++] = {out_pipe[0], POLLIN, 0};
    if (err_open) fds[count++] = {err_pipe[0], POLLIN, 0};
    if (in_fd >= 0) fds[count++] = {in_fd, POLLOUT, 0};
    // Short ticks (also when both pipes are closed and only the exit is awaited) so a child that exited while a grandchild holds the pipes is noticed promptly.
    auto wait = std::min<long long>(
        50, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    int ready = ::poll(fds, count, static_cast<int>(wait));
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == out_pipe[0]) out_open = drain(out_pipe[0], result.out);
      if (fds[i].fd == err_pipe[0]) err_open = drain(err_pipe[0], result.err);
      if (fds[i].fd == in_fd) {
        ssize_t n = ::write(in_fd, options.input.data() + input_written, options.input.size() - input_written);
        if (n > 0) input_written += static_cast<std::size_t>(n);
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || input_written == options.input.size()) {
          ::close(in_fd);
          in_fd = -1;
        }
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (!exited) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  result.exit_code = decode_status(status);
  return result;
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandOptions options;
  options.timeout = timeout;
  return run_command(argv, options);
}

std::string describe(const std::vector<std::string>& argv, const CommandResult& result) {
  std::string line;
  for (const auto& arg : argv) {
    if (!line.empty()) line += ' ';
    line += arg;
  }
  return fmt::format("`{}` exited {}{}\n--- stdout ---\n{}\n--- stderr ---\n{}", line, result.exit_code,
                     result.timed_out ? " (timed out, killed)" : "", result.out, result.err);
}

}  // namespace pooler::test
