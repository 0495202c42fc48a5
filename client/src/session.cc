// Session: autobegin, commit/rollback/close over one leased Connection at a time.
#include "pooler/session.hpp"

namespace pooler::client {

struct Session::Impl {
  Engine engine;
  SessionOptions options;
  std::optional<Connection> conn;  // present while a transaction is in progress
  std::uint64_t serial = 0;        // bumped at every transaction end, so stale SessionTransactions do nothing
  bool explicit_begin = false;

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
    conn.reset();
    explicit_begin = false;
    ++serial;
  }
};

Session::Session(Engine engine, SessionOptions options)
    : impl_(std::make_unique<Impl>(Impl{std::move(engine), options, std::nullopt, 0, false})) {}
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
  return impl_->ensure(impl_->options.autobegin).execute(statement, params);
}

SessionTransaction Session::begin() {
  if (impl_->conn) throw InvalidRequestError("A transaction is already begun on this Session");
  impl_->conn.emplace(impl_->engine.connect());
  impl_->explicit_begin = true;
  return SessionTransaction(this, impl_->serial);
}

Transaction Session::begin_nested() { return impl_->ensure(impl_->options.autobegin).begin_nested(); }

void Session::commit() {
  if (impl_->conn) {
    try {
      impl_->conn->commit();
    } catch (...) {
      impl_->end();
      throw;
    }
  }
  impl_->end();
}

void Session::rollback() {
  if (impl_->conn) {
    try {
      impl_->conn->rollback();
    } catch (...) {
      impl_->end();
      throw;
    }
  }
  impl_->end();
}

void Session::close() { impl_->end(); }
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
  session_->commit();
}

void SessionTransaction::rollback() {
  if (is_active()) session_->rollback();
}

bool SessionTransaction::is_active() const {
  return session_ != nullptr && session_->in_transaction() && session_->transaction_serial() == serial_;
}

}  // namespace pooler::client
