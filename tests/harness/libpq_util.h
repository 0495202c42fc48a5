// RAII and small conveniences over libpq for tests: connections and results that free themselves, and
// queries with a deadline so a hung pooler fails a test instead of hanging it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <libpq-fe.h>

namespace pooler::test {

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// PQconnectdb; the returned connection may be bad (check PQstatus / PQerrorMessage).
PgConnPtr try_connect(const std::string& conninfo);
// PQconnectdb that throws std::runtime_error with libpq's message unless the connection is CONNECTION_OK.
PgConnPtr connect(const std::string& conninfo);

// PQexec; throws unless the result status is PGRES_COMMAND_OK or PGRES_TUPLES_OK.
PgResultPtr exec_ok(PGconn* conn, const std::string& sql);
// The first column of the first row of a query that must succeed.
std::string query_value(PGconn* conn, const std::string& sql);

// The SQLSTATE of a result (empty when it has none).
std::string sqlstate(const PGresult* result);

// Sends a query and collects its last result, failing with std::runtime_error if nothing arrives within
// `timeout`. Returns nullptr when the connection broke before any result came.
PgResultPtr exec_with_deadline(PGconn* conn, const std::string& sql, std::chrono::milliseconds timeout);

}  // namespace pooler::test
