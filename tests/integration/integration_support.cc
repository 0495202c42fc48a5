// Implementation of the shared integration-test checks.
#include "tests/integration/integration_support.h"

#include <csignal>
#include <iostream>
#include <vector>

namespace pooler::test {

void Stack::reset() {
  if (daemon) {
    int status = daemon->stop();
    if (status != 0) {
      ADD_FAILURE() << "the pooler exited with status " << status
                    << " on SIGTERM (sanitizer report or unclean shutdown?)\n--- pooler log tail ---\n"
                    << daemon->log_tail(80);
    }
  }
  daemon.reset();
  cluster.reset();
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

::testing::AssertionResult sighup_until(DaemonProcess& daemon, const std::string& event) {
  const std::size_t before = count_of(daemon.log(), event);
  daemon.signal(SIGHUP);
  if (eventually([&] { return count_of(daemon.log(), event) > before; })) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no new " << event << " in the log after SIGHUP\n" << daemon.log_tail();
}

void dump_logs_on_failure(const Stack& stack) {
  if (!::testing::Test::HasFailure()) return;
  if (stack.daemon) std::cerr << "--- pooler log tail ---\n" << stack.daemon->log_tail(80) << "\n";
  if (stack.cluster) std::cerr << "--- PostgreSQL log tail ---\n" << stack.cluster->log_tail(30) << "\n";
}

::testing::AssertionResult daemon_serves(const Stack& stack) {
  if (!stack.daemon->alive()) return ::testing::AssertionFailure() << "the pooler process died";
  PgConnPtr conn = try_connect(stack.conninfo());
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return ::testing::AssertionFailure() << "a fresh client cannot connect: " << PQerrorMessage(conn.get());
  }
  PgResultPtr result = exec_with_deadline(conn.get(), "SELECT 1", std::chrono::seconds(20));
  if (!result || PQresultStatus(result.get()) != PGRES_TUPLES_OK || std::string(PQgetvalue(result.get(), 0, 0)) != "1") {
    return ::testing::AssertionFailure() << "SELECT 1 failed: " << PQerrorMessage(conn.get());
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult rejected_and_closed(RawClient& client, const std::string& sqlstate, bool error_required) {
  std::vector<ErrorFields> errors;
  try {
    for (;;) {
      auto message = client.read_message(std::chrono::seconds(10));
      if (!message) break;  // closed
      if (message->type != 'E') {
        return ::testing::AssertionFailure() << "expected only ErrorResponse before the close, got message type '"
                                             << message->type << "'";
      }
      errors.push_back(parse_error_fields(message->body));
    }
  } catch (const std::exception& error) {
    return ::testing::AssertionFailure() << "the pooler neither answered nor closed: " << error.what();
  }
  if ((error_required || !sqlstate.empty()) && errors.empty()) {
    return ::testing::AssertionFailure() << "closed without an ErrorResponse";
  }
  if (!sqlstate.empty() && errors.front().sqlstate() != sqlstate) {
    return ::testing::AssertionFailure() << "expected SQLSTATE " << sqlstate << ", got " << errors.front().describe();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace pooler::test
