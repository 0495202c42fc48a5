// Session: autobegin, commit/rollback/close over one leased Connection at a time, and the ORM's unit of work
// told about each transaction's end.
#include "pooler/session.hpp"

#include <vector>

namespace pooler::client {

struct Session::Impl {
  Engine engine;
  SessionOptions options;
  std::optional<Connection> conn;  // present while a transaction is in progress
  std::uint64_t serial = 0;        // bumped at every transaction end, so stale SessionTransactions do nothing
  bool explicit_begin = false;
  std::shared_ptr<orm::detail::UnitOfWork> uow;
  std::vector<Transaction> nested;  // savepoints of begin_nested, outermost first

  // The unit of work runs its statements here; Impl's address is stable (Session moves its unique_ptr).
  void make_unit_of_work() {
    orm::detail::UnitOfWork::Hooks hooks;
    hooks.execute = [this](const orm::Compiled& c) { return ensure(options.autobegin).exec_driver_sql(c.sql, c.params); };
    hooks.rollback_database = [this] {
      if (conn) conn->rollback();
    };
    hooks.end_transaction = [this] { end(); };
    hooks.rollback_savepoint = [this] {
      if (nested.empty() || !nested.back().is_active()) return false;
      nested.back().rollback();
      nested.pop_back();
      return true;
    };
    uow = std::make_shared<orm::detail::UnitOfWork>(std::move(hooks), options.autoflush);
  }

  Connection& ensure(bool autobegin) {
    if (!conn) {
      if (!autobegin) {
        throw InvalidRequestError(
            "Autobegin is disabled on this Session; please call session.begin() to start a new transaction");
      }
      conn.emplace(engine.connect());
    }
    return *conn;
  }
  void end() {
    if (conn) conn->close();
    nested.clear();  // inactive now: closing rolled everything back
    conn.reset();
    explicit_begin = false;
    ++serial;
  }
};

Session::Session(Engine engine, SessionOptions options)
    : impl_(std::make_unique<Impl>(Impl{std::move(engine), options, std::nullopt, 0, false, nullptr, {}})) {
  impl_->make_unit_of_work();
}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->end();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Session::~Session() {
  if (impl_) impl_->end();
}

Result Session::execute(const TextClause& statement, const Params& params) {
  impl_->uow->autoflush();
  return impl_->ensure(impl_->options.autobegin).execute(statement, params);
}

SessionTransaction Session::begin() {
  if (impl_->conn) throw InvalidRequestError("A transaction is already begun on this Session");
  impl_->conn.emplace(impl_->engine.connect());
  impl_->explicit_begin = true;
  return SessionTransaction(this, impl_->serial);
}

SessionTransaction Session::begin_nested() {
  impl_->uow->flush();  // what was pending belongs to the enclosing transaction
  impl_->nested.push_back(impl_->ensure(impl_->options.autobegin).begin_nested());
  impl_->uow->savepoint_begun();
  return SessionTransaction(this, impl_->serial, impl_->nested.size());
}

void Session::release_savepoint(std::size_t depth) {
  impl_->uow->flush();  // a failure rolls back to the innermost savepoint and throws
  if (!savepoint_active(depth)) throw ResourceClosedError("This nested session transaction is inactive");
  impl_->nested[depth - 1].commit();  // RELEASE SAVEPOINT releases the inner ones too
  while (impl_->nested.size() >= depth) impl_->nested.pop_back();
  impl_->uow->savepoint_released(depth);
}

void Session::rollback_savepoint(std::size_t depth) {
  impl_->nested[depth - 1].rollback();  // the server drops the inner ones with it
  while (impl_->nested.size() >= depth) impl_->nested.pop_back();
  impl_->uow->savepoint_rolled_back(depth);
}

bool Session::savepoint_active(std::size_t depth) const {
  return depth <= impl_->nested.size() && impl_->nested[depth - 1].is_active();
}

void Session::commit() {
  impl_->uow->flush();
  if (impl_->conn) {
    try {
      impl_->conn->commit();
    } catch (...) {
      impl_->end();
      throw;
    }
  }
  impl_->end();
  impl_->uow->after_commit(impl_->options.expire_on_commit);
}

void Session::rollback() { impl_->uow->rollback(); }

void Session::close() {
  impl_->end();
  impl_->uow->expunge_all();
}
void Session::flush() { impl_->uow->flush(); }
void Session::expire_all() { impl_->uow->expire_all(); }
void Session::expunge_all() { impl_->uow->expunge_all(); }
orm::detail::UnitOfWork& Session::unit_of_work() const { return *impl_->uow; }
bool Session::in_transaction() const { return impl_->conn.has_value(); }
Connection& Session::connection() { return impl_->ensure(impl_->options.autobegin); }
const Engine& Session::bind() const { return impl_->engine; }
const SessionOptions& Session::options() const { return impl_->options; }
std::uint64_t Session::transaction_serial() const { return impl_->serial; }

SessionTransaction::~SessionTransaction() {
  try {
    rollback();
  } catch (...) {
    // Rollback failures mean a lost connection, already discarded.
  }
}

void SessionTransaction::commit() {
  if (!is_active()) throw ResourceClosedError("This session transaction is inactive");
  if (depth_ > 0) {
    session_->release_savepoint(depth_);
  } else {
    session_->commit();
  }
}

void SessionTransaction::rollback() {
  if (!is_active()) return;
  if (depth_ > 0) {
    session_->rollback_savepoint(depth_);
  } else {
    session_->rollback();
  }
}

bool SessionTransaction::is_active() const {
  return session_ != nullptr && session_->in_transaction() && session_->transaction_serial() == serial_ &&
         (depth_ == 0 || session_->savepoint_active(depth_));
}

}  // namespace pooler::client
