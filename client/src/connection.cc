// Connection and Transaction over ConnectionState: statement execution with bound parameters, autobegin,
// savepoints, and disconnect handling.
#include <cstring>

#include <fmt/format.h>

#include "client/src/connection_state.h"
#include "pooler/connection.hpp"

namespace pooler::client {
namespace detail {

void ConnectionState::check_open() const {
  if (closed_) throw ResourceClosedError("This Connection is closed");
  if (pending_rollback_) {
    throw PendingRollbackError(
        "Can't reconnect until invalid transaction is rolled back: the connection was lost inside a "
        "transaction; call rollback() first");
  }
}

void ConnectionState::acquire() {
  check_open();
  if (!lease_) {
    lease_ = engine_->checkout();
    invalidated_ = false;
  }
}

PGconn* ConnectionState::pg() {
  acquire();
  return lease_->conn;
}

void ConnectionState::lost_connection() noexcept {
  if (lease_) {
    engine_->discard(*lease_, /*invalidate_pool=*/true);
    lease_.reset();
  }
  invalidated_ = true;
  if (in_tx_) pending_rollback_ = true;
}

void ConnectionState::invalidate() noexcept {
  if (closed_) return;
  if (lease_) {
    engine_->discard(*lease_, /*invalidate_pool=*/false);
    lease_.reset();
  }
  invalidated_ = true;
  if (in_tx_) pending_rollback_ = true;
}

PGresult* ConnectionState::run(const char* sql, int n, const std::uint32_t* types, const char* const* values,
                               const int* lengths, const int* formats, std::string_view shown) {
  PGconn* conn = pg();
  if (engine_->echo_enabled()) engine_->echo(shown);
  PGresult* r = n == 0 && types == nullptr
                    ? PQexecParams(conn, sql, 0, nullptr, nullptr, nullptr, nullptr, 0)
                    : PQexecParams(conn, sql, n, types, values, lengths, formats, 0);
  ExecStatusType st = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return r;
  bool lost = PQstatus(conn) == CONNECTION_BAD;
  if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    // Not wrapped: leave the connection clean by failing the COPY, then say so.
    PQclear(r);
    if (st == PGRES_COPY_IN) PQputCopyEnd(conn, "COPY is not supported by execute()");
    while (PGresult* rest = PQgetResult(conn)) PQclear(rest);
    ErrorInfo info;
    info.message = "COPY is not supported by execute(); use driver_connection() with libpq's COPY functions";
    info.statement = sql;
    if (st != PGRES_COPY_IN) {
      // COPY OUT cannot be cancelled mid-stream cheaply; drop the connection instead.
      lost_connection();
      info.connection_invalidated = true;
    }
    throw InterfaceError(std::move(info));
  }
  if (lost) {
    lost_connection();
  }
  struct Clear {
    PGresult* r;
    ~Clear() { PQclear(r); }
  } clear{r};
  throw_from_result(lost ? nullptr : conn, r, sql, lost);
}

void ConnectionState::run_command(const std::string& sql) {
  PQclear(run(sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, sql));
}

namespace {
// Parameter arrays for PQexecParams, pointing into the Values.
struct Bound {
  std::vector<std::uint32_t> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  void add(const Value& v) {
    types.push_back(v.type_oid());
    if (v.is_null()) {
      values.push_back(nullptr);
      lengths.push_back(0);
    } else {
      values.push_back(v.data()->data());
      lengths.push_back(static_cast<int>(v.data()->size()));
    }
    formats.push_back(v.is_binary() ? 1 : 0);
  }
};

std::string shown_with_params(std::string_view sql, const std::vector<std::string>& names,
                              const std::vector<const Value*>& values) {
  std::string s(sql);
  s += "\n[parameters] {";
  for (std::size_t i = 0; i < names.size(); ++i) {
    s += fmt::format("{}'{}': {}", i == 0 ? "" : ", ", names[i], values[i]->repr());
  }
  s += "}";
  return s;
}
}  // namespace

Result ConnectionState::execute(const TextClause& statement, const Params& params) {
  check_open();
  autobegin();
  const auto& names = statement.names();
  std::vector<const Value*> ordered;
  ordered.reserve(names.size());
  for (const auto& name : names) {
    const Value* found = nullptr;
    for (const auto& [k, v] : params) {
      if (k == name) {
        found = &v;
        break;
      }
    }
    if (found == nullptr) {
      throw ArgumentError(fmt::format("A value is required for bind parameter '{}'", name));
    }
    ordered.push_back(found);
  }
  Bound b;
  for (const Value* v : ordered) b.add(*v);
  int n = static_cast<int>(ordered.size());
  std::string shown = engine_->echo_enabled() ? shown_with_params(statement.text(), names, ordered) : "";
  return Result(run(statement.sql().c_str(), n, n ? b.types.data() : nullptr, b.values.data(), b.lengths.data(),
                    b.formats.data(), shown));
}

Result ConnectionState::exec_driver_sql(std::string_view sql, const std::vector<Value>& params) {
  check_open();
  autobegin();
  Bound b;
  for (const Value& v : params) b.add(v);
  std::string text(sql);
  int n = static_cast<int>(params.size());
  return Result(run(text.c_str(), n, n ? b.types.data() : nullptr, b.values.data(), b.lengths.data(),
                    b.formats.data(), text));
}

void ConnectionState::autobegin() {
  if (in_tx_ || engine_->autocommit()) return;
  if (engine_->echo_enabled()) engine_->echo("BEGIN (implicit)");
  // The transaction counts as begun from here: if the connection turns out dead, the app learns of it
  // once (OperationalError) and then must rollback(), as when it dies later in the transaction.
  in_tx_ = true;
  root_serial_ = next_serial_++;
  try {
    PQclear(run(engine_->begin_sql().c_str(), 0, nullptr, nullptr, nullptr, nullptr, ""));
  } catch (...) {
    if (!pending_rollback_) {
      in_tx_ = false;
      root_serial_ = 0;
    }
    throw;
  }
}

void ConnectionState::begin_root() {
  check_open();
  if (in_tx_) throw InvalidRequestError("a transaction is already begun for this connection");
  run_command(engine_->begin_sql());
  in_tx_ = true;
  root_serial_ = next_serial_++;
}

void ConnectionState::begin_savepoint() {
  check_open();
  if (!in_tx_) {
    // SQLAlchemy: begin_nested() on a connection with no transaction begins the outer one too. In
    // AUTOCOMMIT there is no outer transaction, so a savepoint has to start one explicitly.
    run_command(engine_->begin_sql());
    in_tx_ = true;
    root_serial_ = next_serial_++;
  }
  std::string name = fmt::format("pooler_savepoint_{}", ++savepoint_names_);
  run_command("SAVEPOINT " + name);
  savepoints_.push_back(Savepoint{next_serial_++, std::move(name)});
}

void ConnectionState::commit_root() {
  check_open();
  if (!in_tx_) return;
  if (lease_ && PQtransactionStatus(lease_->conn) == PQTRANS_INERROR) {
    rollback_root();
    throw PendingRollbackError(
        "This transaction is inactive due to a previous exception during execution; it has been rolled back");
  }
  savepoints_.clear();
  in_tx_ = false;
  root_serial_ = 0;
  run_command("COMMIT");
}

void ConnectionState::rollback_root() {
  if (closed_) throw ResourceClosedError("This Connection is closed");
  savepoints_.clear();
  root_serial_ = 0;
  bool was = in_tx_;
  in_tx_ = false;
  if (pending_rollback_) {
    pending_rollback_ = false;  // the transaction died with its connection
    return;
  }
  if (was && lease_) run_command("ROLLBACK");
}

void ConnectionState::release_savepoint(int depth) {
  check_open();
  if (depth < 1 || depth > savepoint_depth()) return;
  std::string name = savepoints_[static_cast<std::size_t>(depth - 1)].name;
  savepoints_.resize(static_cast<std::size_t>(depth - 1));
  run_command("RELEASE SAVEPOINT " + name);
}

void ConnectionState::rollback_savepoint(int depth) {
  check_open();
  if (depth < 1 || depth > savepoint_depth()) return;
  std::string name = savepoints_[static_cast<std::size_t>(depth - 1)].name;
  savepoints_.resize(static_cast<std::size_t>(depth - 1));
  run_command("ROLLBACK TO SAVEPOINT " + name);
}

bool ConnectionState::active(int depth, std::uint64_t serial) const {
  if (closed_ || !in_tx_ || serial == 0) return false;
  if (depth == 0) return root_serial_ == serial;
  return depth <= savepoint_depth() && savepoints_[static_cast<std::size_t>(depth - 1)].serial == serial;
}

std::uint64_t ConnectionState::serial_at(int depth) const {
  if (depth == 0) return root_serial_;
  if (depth > savepoint_depth()) return 0;
  return savepoints_[static_cast<std::size_t>(depth - 1)].serial;
}

void ConnectionState::close() noexcept {
  if (closed_) return;
  closed_ = true;
  savepoints_.clear();
  in_tx_ = false;
  pending_rollback_ = false;
  if (lease_) {
    // The pool's reset on return rolls back whatever is open.
    engine_->checkin(*lease_);
    lease_.reset();
  }
}

}  // namespace detail

// --- Connection ---------------------------------------------------------------------------------------

Connection::Connection(std::shared_ptr<detail::ConnectionState> state) : state_(std::move(state)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (state_) state_->close();
    state_ = std::move(other.state_);
  }
  return *this;
}
Connection::~Connection() {
  if (state_) state_->close();
}

Result Connection::execute(const TextClause& statement, const Params& params) {
  return state_->execute(statement, params);
}

std::int64_t Connection::execute_many(const TextClause& statement, const std::vector<Params>& param_sets) {
  std::int64_t total = 0;
  for (const auto& p : param_sets) total += state_->execute(statement, p).rowcount();
  return total;
}

Result Connection::exec_driver_sql(std::string_view sql, const std::vector<Value>& params) {
  return state_->exec_driver_sql(sql, params);
}

Transaction Connection::begin() {
  state_->begin_root();
  return Transaction(state_, 0, false);
}

Transaction Connection::begin_nested() {
  state_->begin_savepoint();
  return Transaction(state_, state_->savepoint_depth(), false);
}

void Connection::commit() { state_->commit_root(); }
void Connection::rollback() { state_->rollback_root(); }
bool Connection::in_transaction() const { return state_->in_transaction(); }
bool Connection::in_nested_transaction() const { return state_->savepoint_depth() > 0; }
void Connection::close() {
  if (state_) state_->close();
}
bool Connection::closed() const { return !state_ || state_->closed(); }
bool Connection::invalidated() const { return state_->invalidated(); }
void Connection::invalidate() { state_->invalidate(); }
pg_conn* Connection::driver_connection() { return state_->pg(); }

// --- Transaction --------------------------------------------------------------------------------------

Transaction::Transaction(std::shared_ptr<detail::ConnectionState> state, int depth, bool owns_connection)
    : state_(std::move(state)), depth_(depth), serial_(state_->serial_at(depth)) {
  if (owns_connection) owned_ = std::make_unique<Connection>(state_);
}

Transaction::Transaction(Transaction&& other) noexcept
    : state_(std::move(other.state_)),
      owned_(std::move(other.owned_)),
      depth_(other.depth_),
      serial_(std::exchange(other.serial_, 0)) {}

Transaction::~Transaction() {
  if (!state_) return;
  try {
    close();
  } catch (...) {
    // A failed ROLLBACK means the connection is gone; the pool has discarded it already.
  }
  owned_.reset();  // engine.begin(): back to the pool
}

Result Transaction::execute(const TextClause& statement, const Params& params) {
  if (!is_active()) throw ResourceClosedError("This transaction is inactive");
  return state_->execute(statement, params);
}

Result Transaction::exec_driver_sql(std::string_view sql, const std::vector<Value>& params) {
  if (!is_active()) throw ResourceClosedError("This transaction is inactive");
  return state_->exec_driver_sql(sql, params);
}

Transaction Transaction::begin_nested() {
  if (!is_active()) throw ResourceClosedError("This transaction is inactive");
  state_->begin_savepoint();
  return Transaction(state_, state_->savepoint_depth(), false);
}

void Transaction::commit() {
  if (!is_active()) throw ResourceClosedError("This transaction is inactive");
  if (depth_ == 0) {
    state_->commit_root();
  } else {
    state_->release_savepoint(depth_);
  }
}

void Transaction::rollback() {
  if (!is_active()) return;  // SQLAlchemy: rollback of an inactive transaction is a no-op
  if (depth_ == 0) {
    state_->rollback_root();
  } else {
    state_->rollback_savepoint(depth_);
  }
}

void Transaction::close() { rollback(); }

bool Transaction::is_active() const { return state_ && state_->active(depth_, serial_); }

Connection& Transaction::connection() {
  if (!owned_) throw InvalidRequestError("this Transaction was begun on a Connection you hold; use that one");
  return *owned_;
}

}  // namespace pooler::client
