// The exceptions the client library throws: SQLAlchemy's names for misuse and pool errors, and under DBError
// the DBAPI (PEP 249) classes keyed by SQLSTATE class, with libpqxx-style leaves for the SQLSTATEs apps catch.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>

namespace pooler {
inline namespace client {

// Base of everything this library throws (SQLAlchemy's SQLAlchemyError).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad argument: malformed URL, unknown option, missing bind parameter.
class ArgumentError : public Error {
 public:
  using Error::Error;
};

// The API was used in a way the current state does not allow (e.g. begin() inside a transaction).
class InvalidRequestError : public Error {
 public:
  using Error::Error;
};
class ResourceClosedError : public InvalidRequestError {
 public:
  using InvalidRequestError::InvalidRequestError;
};
// one() / scalar_one() found no row.
class NoResultFound : public InvalidRequestError {
 public:
  using InvalidRequestError::InvalidRequestError;
};
// one() / one_or_none() / scalar_one() found more than one row.
class MultipleResultsFound : public InvalidRequestError {
 public:
  using InvalidRequestError::InvalidRequestError;
};
// The transaction failed (a statement raised) and must be rolled back before anything else.
class PendingRollbackError : public InvalidRequestError {
 public:
  using InvalidRequestError::InvalidRequestError;
};

// A value could not be converted: a parameter that cannot be encoded, or row.get<T>() on a field whose text
// is not a T, or on a NULL into a T that is not std::optional.
class ConversionError : public Error {
 public:
  using Error::Error;
};

// No connection could be had from the pool within pool_timeout. The message is QueuePool's:
// `pool "app/app" limit of size 5 overflow 10 reached, connection timed out, timeout 30.00`.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// What the server (or libpq) said about a failure.
struct ErrorInfo {
  std::string sqlstate{};  // five characters; empty when libpq gave none
  std::string message{};   // primary message
  std::string detail{};
  std::string hint{};
  std::string statement{};  // the SQL that failed, when there was one
  std::string constraint{};
  std::string table{};
  std::string column{};
  bool connection_invalidated = false;  // the connection was lost and has been discarded from the pool
  // Set when a Session flush failed: the mapped object whose statement failed, its type and a description
  // ("users object (id=NULL, name='ann', …)").
  std::shared_ptr<void> instance{};
  const std::type_info* instance_type = nullptr;
  std::string instance_repr{};
};

// An error reported by the database or the driver (DBAPI's Error; SQLAlchemy's DBAPIError).
class DBError : public Error {
 public:
  explicit DBError(ErrorInfo info);
  [[nodiscard]] const std::string& sqlstate() const { return info_->sqlstate; }
  [[nodiscard]] const std::string& message() const { return info_->message; }
  [[nodiscard]] const std::string& detail() const { return info_->detail; }
  [[nodiscard]] const std::string& hint() const { return info_->hint; }
  [[nodiscard]] const std::string& statement() const { return info_->statement; }
  [[nodiscard]] const ErrorInfo& info() const { return *info_; }
  // SQLAlchemy's DBAPIError.connection_invalidated: the error was a disconnect.
  [[nodiscard]] bool connection_invalidated() const { return info_->connection_invalidated; }
  // The object a failed Session flush was writing, when it is a T (null otherwise).
  template <class T>
  [[nodiscard]] std::shared_ptr<T> instance() const {
    if (info_->instance_type == nullptr || *info_->instance_type != typeid(T)) return nullptr;
    return std::static_pointer_cast<T>(info_->instance);
  }

 private:
  std::shared_ptr<const ErrorInfo> info_;  // shared so copies (exceptions are copied) stay cheap
};

#define POOLER_CLIENT_DB_ERROR(Name, Base)  \
  class Name : public Base {                \
   public:                                  \
    using Base::Base;                       \
  };

// DBAPI classes, chosen by SQLSTATE class as psycopg does.
POOLER_CLIENT_DB_ERROR(InterfaceError, DBError)       // libpq misuse, no SQLSTATE
POOLER_CLIENT_DB_ERROR(DatabaseError, DBError)        // anything not below
POOLER_CLIENT_DB_ERROR(DataError, DatabaseError)      // 22xxx
POOLER_CLIENT_DB_ERROR(OperationalError, DatabaseError)  // 08, 26-28, 34, 40, 53-58, HV; connection loss
POOLER_CLIENT_DB_ERROR(IntegrityError, DatabaseError)    // 23xxx
POOLER_CLIENT_DB_ERROR(InternalError, DatabaseError)     // 24, 25, 2B, 2D, 2F, 38, 39, 3B, F0, P0, XX
POOLER_CLIENT_DB_ERROR(ProgrammingError, DatabaseError)  // 20, 21, 3D, 3F, 42, 44
POOLER_CLIENT_DB_ERROR(NotSupportedError, DatabaseError)  // 0A
// Leaves for the SQLSTATEs applications handle on purpose (libpqxx's idea).
POOLER_CLIENT_DB_ERROR(UniqueViolation, IntegrityError)       // 23505
POOLER_CLIENT_DB_ERROR(ForeignKeyViolation, IntegrityError)   // 23503
POOLER_CLIENT_DB_ERROR(NotNullViolation, IntegrityError)      // 23502
POOLER_CLIENT_DB_ERROR(CheckViolation, IntegrityError)        // 23514
POOLER_CLIENT_DB_ERROR(SerializationFailure, OperationalError)  // 40001
POOLER_CLIENT_DB_ERROR(DeadlockDetected, OperationalError)      // 40P01
POOLER_CLIENT_DB_ERROR(QueryCanceled, OperationalError)         // 57014
POOLER_CLIENT_DB_ERROR(SyntaxError, ProgrammingError)           // 42601
POOLER_CLIENT_DB_ERROR(UndefinedTable, ProgrammingError)        // 42P01
POOLER_CLIENT_DB_ERROR(UndefinedColumn, ProgrammingError)       // 42703

#undef POOLER_CLIENT_DB_ERROR

// Throws the most specific class above for info.sqlstate.
[[noreturn]] void throw_db_error(ErrorInfo info);

}  // namespace client
}  // namespace pooler
