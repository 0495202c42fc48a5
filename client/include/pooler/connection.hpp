// Connection: one pooled PostgreSQL connection, SQLAlchemy 2.0 style ("commit as you go": the first
// statement begins a transaction, commit() ends it, closing without commit rolls back). Transaction: RAII
// over BEGIN/COMMIT/ROLLBACK, or over a SAVEPOINT for begin_nested(); rolled back if not committed.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/result.hpp"
#include "pooler/text.hpp"
#include "pooler/types.hpp"

struct pg_conn;  // libpq's PGconn

namespace pooler {
inline namespace client {

class Transaction;

namespace detail {
class ConnectionState;
}  // namespace detail

class Connection {
 public:
  explicit Connection(std::shared_ptr<detail::ConnectionState> state);
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs `statement` with its :name parameters bound from `params` (sent as protocol parameters). Begins a
  // transaction first unless one is open or the engine is AUTOCOMMIT. Throws a DBError subclass by SQLSTATE.
  Result execute(const TextClause& statement, const Params& params = {});
  // executemany: the statement once per parameter set; returns the total rowcount.
  std::int64_t execute_many(const TextClause& statement, const std::vector<Params>& param_sets);
  // SQL with $1…$n placeholders, passed to libpq as is (SQLAlchemy's exec_driver_sql).
  Result exec_driver_sql(std::string_view sql, const std::vector<Value>& params = {});

  // Explicit transaction; InvalidRequestError if one is already begun (autobegun included).
  [[nodiscard]] Transaction begin();
  // SAVEPOINT (beginning the outer transaction first if needed); its rollback undoes only its part.
  [[nodiscard]] Transaction begin_nested();
  // Commit / roll back the transaction in progress, if any (savepoints included).
  void commit();
  void rollback();
  [[nodiscard]] bool in_transaction() const;
  [[nodiscard]] bool in_nested_transaction() const;

  // Returns the connection to the pool, rolling back what is uncommitted. Idempotent.
  void close();
  [[nodiscard]] bool closed() const;
  // The connection was lost (or invalidate() was called): it has been discarded. The next statement gets a
  // fresh pooled connection, unless a transaction was open: then rollback() first (PendingRollbackError).
  [[nodiscard]] bool invalidated() const;
  void invalidate();

  // The libpq connection, for what this library does not wrap (COPY, LISTEN/NOTIFY). Checks out a
  // connection if there is none.
  [[nodiscard]] pg_conn* driver_connection();

 private:
  std::shared_ptr<detail::ConnectionState> state_;
};

class Transaction {
 public:
  Transaction(std::shared_ptr<detail::ConnectionState> state, int depth, bool owns_connection);
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  // Rolls back if still active; never throws.
  ~Transaction();

  Result execute(const TextClause& statement, const Params& params = {});
  Result exec_driver_sql(std::string_view sql, const std::vector<Value>& params = {});
  // A savepoint inside this transaction.
  [[nodiscard]] Transaction begin_nested();

  // COMMIT, or RELEASE SAVEPOINT for a nested one. Committing an outer transaction ends inner ones too.
  void commit();
  // ROLLBACK, or ROLLBACK TO SAVEPOINT (only this savepoint's work is undone).
  void rollback();
  // Rolls back if active.
  void close();
  [[nodiscard]] bool is_active() const;
  [[nodiscard]] bool is_nested() const { return depth_ > 0; }
  // The connection this transaction runs on (owned by it after engine.begin()).
  [[nodiscard]] Connection& connection();

 private:
  std::shared_ptr<detail::ConnectionState> state_;
  std::unique_ptr<Connection> owned_;  // engine.begin(): returned to the pool with the transaction
  int depth_;                          // 0: the root transaction; n: the n-th savepoint level
  std::uint64_t serial_;               // which root/savepoint instance this is, to spot stale handles
};

}  // namespace client
}  // namespace pooler
