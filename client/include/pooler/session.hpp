// Session: SQLAlchemy 2.0's unit of work, Core part. It autobegins on first use, holds one pooled
// connection while its transaction lasts, and gives it back at commit(), rollback() and close(). The ORM
// (identity map, flush) will hang off the same object.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "pooler/connection.hpp"
#include "pooler/engine.hpp"
#include "pooler/result.hpp"
#include "pooler/text.hpp"

namespace pooler {
inline namespace client {

struct SessionOptions {
  // false: execute() without begin() raises InvalidRequestError (SQLAlchemy's autobegin=False).
  bool autobegin = true;
  // For the ORM: expire loaded objects at commit (SQLAlchemy's default).
  bool expire_on_commit = true;
};

class Session;

// The RAII guard session.begin() returns: commit() commits the session; leaving it uncommitted rolls back.
class SessionTransaction {
 public:
  SessionTransaction(Session* session, std::uint64_t serial) : session_(session), serial_(serial) {}
  SessionTransaction(SessionTransaction&& other) noexcept
      : session_(std::exchange(other.session_, nullptr)), serial_(other.serial_) {}
  SessionTransaction& operator=(SessionTransaction&&) = delete;
  ~SessionTransaction();
  void commit();
  void rollback();
  [[nodiscard]] bool is_active() const;

 private:
  Session* session_;
  std::uint64_t serial_;
};

class Session {
 public:
  explicit Session(Engine engine, SessionOptions options = {});
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // Rolls back whatever is uncommitted and returns the connection.
  ~Session();

  Result execute(const TextClause& statement, const Params& params = {});
  template <class T>
  [[nodiscard]] std::optional<T> scalar(const TextClause& statement, const Params& params = {}) {
    return execute(statement, params).template scalar<T>();
  }
  template <class T>
  [[nodiscard]] ScalarResult<T> scalars(const TextClause& statement, const Params& params = {}) {
    return execute(statement, params).template scalars<T>();
  }

  // Explicit begin; InvalidRequestError if a transaction is already in progress.
  [[nodiscard]] SessionTransaction begin();
  [[nodiscard]] Transaction begin_nested();
  void commit();
  void rollback();
  // Ends the transaction (rolled back) and releases the connection; the Session stays usable.
  void close();
  [[nodiscard]] bool in_transaction() const;
  // The connection of the current transaction (autobegins one).
  [[nodiscard]] Connection& connection();
  [[nodiscard]] const Engine& bind() const;
  [[nodiscard]] const SessionOptions& options() const;
  [[nodiscard]] std::uint64_t transaction_serial() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// sessionmaker(engine, {...}): a factory of Sessions with the same engine and options.
class SessionMaker {
 public:
  SessionMaker(Engine engine, SessionOptions options) : engine_(std::move(engine)), options_(options) {}
  [[nodiscard]] Session operator()() const { return Session(engine_, options_); }

 private:
  Engine engine_;
  SessionOptions options_;
};

[[nodiscard]] inline SessionMaker sessionmaker(Engine engine, SessionOptions options = {}) {
  return SessionMaker(std::move(engine), options);
}

}  // namespace client
}  // namespace pooler
