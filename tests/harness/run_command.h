// Runs an external program (psql, pgbench, initdb, the pooler) without a shell and captures its output,
// so tests can drive real clients with a deadline and their own environment variables.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace pooler::test {

struct CommandResult {
  // Exit status as a shell reports it: the exit code, or 128 + signal number when killed by a signal.
  int exit_code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

struct CommandOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  // Added to (or replacing entries of) the inherited environment, e.g. {"PGPASSWORD", "secret"}.
  std::vector<std::pair<std::string, std::string>> env;
  // Written to the child's stdin, which is then closed; stdin is empty when this is empty.
  std::string input;
};

// Runs argv[0] (looked up in PATH when it has no '/') in its own process group. On timeout the whole group is
// killed with SIGKILL and `timed_out` is set. Throws std::runtime_error only when the program cannot be
// started at all.
CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options = {});

// The same with only a timeout, the common case.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// A one-line rendering of argv and the result, for assertion messages.
std::string describe(const std::vector<std::string>& argv, const CommandResult& result);

}  // namespace pooler::test
