// libpq helpers; exec_with_deadline drives libpq's async API with poll() so it can give up.
#include "tests/harness/libpq_util.h"

#include <poll.h>
#include <stdexcept>

#include <fmt/format.h>

namespace pooler::test {

using Clock = std::chrono::steady_clock;

PgConnPtr try_connect(const std::string& conninfo) { return PgConnPtr(PQconnectdb(conninfo.c_str())); }

PgConnPtr connect(const std::string& conninfo) {
  PgConnPtr conn = try_connect(conninfo);
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error(fmt::format("connect `{}` failed: {}", conninfo,
                                         conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  return conn;
}

PgResultPtr exec_ok(PGconn* conn, const std::string& sql) {
  PgResultPtr result(PQexec(conn, sql.c_str()));
  ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(fmt::format("`{}` failed: {}", sql, PQerrorMessage(conn)));
  }
  return result;
}

std::string query_value(PGconn* conn, const std::string& sql) {
  PgResultPtr result = exec_ok(conn, sql);
  if (PQntuples(result.get()) < 1 || PQnfields(result.get()) < 1) {
    throw std::runtime_error(fmt::format("`{}` returned no value", sql));
  }
  return PQgetvalue(result.get(), 0, 0);
}

std::string sqlstate(const PGresult* result) {
  if (result == nullptr) return {};
  const char* code = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  return code != nullptr ? code : "";
}

PgResultPtr exec_with_deadline(PGconn* conn, const std::string& sql, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (PQsendQuery(conn, sql.c_str()) == 0) return nullptr;  // already broken
  PgResultPtr last;
  for (;;) {
    while (PQisBusy(conn) == 0) {
      PGresult* next = PQgetResult(conn);
      if (next == nullptr) return last;
      last.reset(next);
      // COPY states need the caller; hand the result over as it is.
      ExecStatusType status = PQresultStatus(last.get());
      if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) return last;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error(fmt::format("`{}`: no result within {} ms", sql, timeout.count()));
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    if (pfd.fd < 0) return last;
    ::poll(&pfd, 1, static_cast<int>(left));
    if (PQconsumeInput(conn) == 0) {
      // The connection broke; libpq may still have an error result queued for us.
      PGresult* next = PQgetResult(conn);
      if (next != nullptr) last.reset(next);
      return last;
    }
  }
}

}  // namespace pooler::test
