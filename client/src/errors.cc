// DBError and the SQLSTATE → exception class mapping.
#include <string_view>

#include <libpq-fe.h>

#include "client/src/engine_impl.h"
#include "pooler/errors.hpp"

namespace pooler::client {
namespace {

std::string what_text(const ErrorInfo& info) {
  std::string s;
  if (!info.sqlstate.empty()) s = "(" + info.sqlstate + ") ";
  s += info.message;
  if (!info.detail.empty()) s += "\nDETAIL:  " + info.detail;
  if (!info.hint.empty()) s += "\nHINT:  " + info.hint;
  if (!info.statement.empty()) s += "\n[SQL: " + info.statement + "]";
  if (!info.instance_repr.empty()) s += "\n[while flushing " + info.instance_repr + "]";
  return s;
}

}  // namespace

DBError::DBError(ErrorInfo info)
    : Error(what_text(info)), info_(std::make_shared<const ErrorInfo>(std::move(info))) {}

void throw_db_error(ErrorInfo info) {
  const std::string_view s = info.sqlstate;
  // Specific SQLSTATEs first, then by class as psycopg maps them.
  if (s == "23505") throw UniqueViolation(std::move(info));
  if (s == "23503") throw ForeignKeyViolation(std::move(info));
  if (s == "23502") throw NotNullViolation(std::move(info));
  if (s == "23514") throw CheckViolation(std::move(info));
  if (s == "40001") throw SerializationFailure(std::move(info));
  if (s == "40P01") throw DeadlockDetected(std::move(info));
  if (s == "57014") throw QueryCanceled(std::move(info));
  if (s == "42601") throw SyntaxError(std::move(info));
  if (s == "42P01") throw UndefinedTable(std::move(info));
  if (s == "42703") throw UndefinedColumn(std::move(info));
  if (s.size() != 5) {
    if (info.connection_invalidated) throw OperationalError(std::move(info));
    throw InterfaceError(std::move(info));
  }
  const std::string_view c = s.substr(0, 2);
  if (c == "22") throw DataError(std::move(info));
  if (c == "23") throw IntegrityError(std::move(info));
  if (c == "0A") throw NotSupportedError(std::move(info));
  if (c == "08" || c == "26" || c == "27" || c == "28" || c == "34" || c == "40" || c == "53" || c == "54" ||
      c == "55" || c == "57" || c == "58" || c == "HV") {
    throw OperationalError(std::move(info));
  }
  if (c == "24" || c == "25" || c == "2B" || c == "2D" || c == "2F" || c == "38" || c == "39" || c == "3B" ||
      c == "F0" || c == "P0" || c == "XX") {
    throw InternalError(std::move(info));
  }
  if (c == "20" || c == "21" || c == "3D" || c == "3F" || c == "42" || c == "44") {
    throw ProgrammingError(std::move(info));
  }
  throw DatabaseError(std::move(info));
}

namespace detail {

void throw_from_result(PGconn* conn, const PGresult* result, std::string_view statement, bool connection_lost) {
  ErrorInfo info;
  auto field = [&](int code) -> std::string {
    const char* v = result != nullptr ? PQresultErrorField(result, code) : nullptr;
    return v != nullptr ? v : "";
  };
  info.sqlstate = field(PG_DIAG_SQLSTATE);
  info.message = field(PG_DIAG_MESSAGE_PRIMARY);
  info.detail = field(PG_DIAG_MESSAGE_DETAIL);
  info.hint = field(PG_DIAG_MESSAGE_HINT);
  info.constraint = field(PG_DIAG_CONSTRAINT_NAME);
  info.table = field(PG_DIAG_TABLE_NAME);
  info.column = field(PG_DIAG_COLUMN_NAME);
  info.statement = std::string(statement);
  info.connection_invalidated = connection_lost;
  if (info.message.empty()) {
    const char* m = result != nullptr ? PQresultErrorMessage(result) : nullptr;
    if ((m == nullptr || *m == '\0') && conn != nullptr) m = PQerrorMessage(conn);
    info.message = (m != nullptr && *m != '\0') ? m : (connection_lost ? "server closed the connection" : "unknown error");
    while (!info.message.empty() && (info.message.back() == '\n' || info.message.back() == ' ')) {
      info.message.pop_back();
    }
  }
  if (connection_lost && info.sqlstate.empty()) info.sqlstate = "08006";  // connection_failure
  throw_db_error(std::move(info));
}

}  // namespace detail
}  // namespace pooler::client
