// Session: SQLAlchemy 2.0's Session. It autobegins on first use, holds one pooled connection while its
// transaction lasts, and gives it back at commit(), rollback() and close(). The ORM half — add, get, flush,
// identity map, select<T>() — works on mapped structs (see pooler/orm.hpp) held as std::shared_ptr<T>: the
// session keeps one object per primary key, so the same row is the same pointer for the session's lifetime.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <utility>
#include <vector>

#include "pooler/connection.hpp"
#include "pooler/engine.hpp"
#include "pooler/orm/statement.hpp"
#include "pooler/orm/unit_of_work.hpp"
#include "pooler/result.hpp"
#include "pooler/text.hpp"

namespace pooler {
inline namespace client {

struct SessionOptions {
  // false: execute() without begin() raises InvalidRequestError (SQLAlchemy's autobegin=False).
  bool autobegin = true;
  // For the ORM: expire loaded objects at commit (SQLAlchemy's default): their next load (query, get(),
  // relationship access) reads them afresh. false keeps them as they are, e.g. to use them after the session.
  bool expire_on_commit = true;
  // For the ORM: flush pending changes before every query the session runs (SQLAlchemy's default).
  bool autoflush = true;
};

class Session;

// The RAII guard session.begin() and session.begin_nested() return: commit() commits the session (or releases
// the savepoint); leaving it uncommitted rolls back (to the savepoint).
class SessionTransaction {
 public:
  // depth 0: the session's transaction; n: its n-th savepoint.
  SessionTransaction(Session* session, std::uint64_t serial, std::size_t depth = 0)
      : session_(session), serial_(serial), depth_(depth) {}
  SessionTransaction(SessionTransaction&& other) noexcept
      : session_(std::exchange(other.session_, nullptr)), serial_(other.serial_), depth_(other.depth_) {}
  SessionTransaction& operator=(SessionTransaction&&) = delete;
  ~SessionTransaction();
  void commit();
  void rollback();
  [[nodiscard]] bool is_active() const;
  [[nodiscard]] bool is_nested() const { return depth_ > 0; }

 private:
  Session* session_;
  std::uint64_t serial_;
  std::size_t depth_;
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
  // SAVEPOINT (SQLAlchemy's begin_nested): flushes, then opens a savepoint (autobeginning the transaction).
  // commit() releases it; rollback() (or leaving it uncommitted) rolls back to it, and the ORM state with it:
  // objects added since leave the session (server-assigned keys cleared), deletions since are undone, objects
  // changed since (flushed or only in memory) are read again from their restored rows. A flush that fails
  // inside a savepoint rolls back that savepoint only; the transaction goes on. commit() of the session
  // commits the whole transaction, savepoints included.
  [[nodiscard]] SessionTransaction begin_nested();
  void commit();
  // ROLLBACK, and the ORM state with it, as SQLAlchemy does: objects added or INSERTed in the transaction leave
  // the session (server-assigned keys cleared), deleted ones are back, and objects the transaction changed
  // (flushed, or only in memory) are read again on the same connection before it returns to the pool, so they
  // show their rows and nothing is left to flush. Every object is expired.
  void rollback();
  // Ends the transaction (rolled back) and releases the connection; the Session stays usable.
  void close();
  [[nodiscard]] bool in_transaction() const;
  // The connection of the current transaction (autobegins one).
  [[nodiscard]] Connection& connection();
  [[nodiscard]] const Engine& bind() const;
  [[nodiscard]] const SessionOptions& options() const;
  [[nodiscard]] std::uint64_t transaction_serial() const;

  // --- ORM (mapped types: pooler/orm/mapping.hpp) ------------------------------------------------------
  // Objects live in std::shared_ptr<T>; add() of a value moves it into one and returns it.
  template <orm::Mapped T>
  std::shared_ptr<T> add(T object) {
    return add(std::make_shared<T>(std::move(object)));
  }
  template <orm::Mapped T>
  std::shared_ptr<T> add(std::shared_ptr<T> object) {
    unit_of_work().add(orm::detail::entity_info<T>(), object);
    return object;
  }
  // Each element: std::shared_ptr<T> or T.
  template <std::ranges::input_range R>
  void add_all(R&& objects) {
    for (auto&& o : objects) add(o);
  }
  // DELETE at the next flush (a pending object is just dropped).
  template <orm::Mapped T>
  void delete_(const std::shared_ptr<T>& object) {
    unit_of_work().delete_(orm::detail::entity_info<T>(), object.get());
  }
  // By primary key: the identity map first (no query), else SELECT. Null when there is no such row. A composite
  // key is a std::tuple of its columns' values in column order: get<T>(std::tuple{user_id, org_id}).
  template <orm::Mapped T, class K>
  [[nodiscard]] std::shared_ptr<T> get(const K& primary_key) {
    std::vector<Value> values;
    if constexpr (requires { std::tuple_size<K>::value; }) {
      std::apply([&](const auto&... v) { (values.emplace_back(v), ...); }, primary_key);
    } else {
      values.emplace_back(primary_key);
    }
    return std::static_pointer_cast<T>(unit_of_work().get(orm::detail::entity_info<T>(), values));
  }
  // The session's object for object's primary key (loaded if needed, added if new), with object's columns
  // copied onto it.
  template <orm::Mapped T>
  std::shared_ptr<T> merge(const T& object) {
    return std::static_pointer_cast<T>(unit_of_work().merge(orm::detail::entity_info<T>(), &object));
  }
  template <orm::Mapped T>
  void refresh(const std::shared_ptr<T>& object) {
    unit_of_work().refresh(object.get());
  }
  template <orm::Mapped T>
  void expire(const std::shared_ptr<T>& object) {
    unit_of_work().expire(object.get());
  }
  template <orm::Mapped T>
  void expunge(const std::shared_ptr<T>& object) {
    unit_of_work().expunge(object.get());
  }
  template <orm::Mapped T>
  [[nodiscard]] bool contains(const std::shared_ptr<T>& object) const {
    return unit_of_work().contains(object.get());
  }
  template <orm::Mapped T>
  [[nodiscard]] bool is_modified(const std::shared_ptr<T>& object) const {
    return unit_of_work().is_modified(object.get());
  }
  // Writes pending changes (INSERT/UPDATE/DELETE in foreign-key order) in the current transaction. On a
  // database error the transaction is rolled back, the session's objects are reset as for rollback(), and
  // the DBError (by SQLSTATE) is rethrown with the failing object attached (DBError::instance<T>()).
  void flush();
  void expire_all();
  // Forgets every object (they become detached).
  void expunge_all();

  template <class... Items>
  [[nodiscard]] orm::Result<typename orm::Select<Items...>::row_type> execute(const orm::Select<Items...>& statement) {
    using Row = typename orm::Select<Items...>::row_type;
    return orm::Result<Row>(orm::detail::make_rows<Items...>(unit_of_work().select(statement.core())));
  }
  // Bulk UPDATE/DELETE; objects of the session it touched are expired / removed. rowcount() says how many.
  template <orm::Mapped T>
  Result execute(const orm::Update<T>& statement) {
    return unit_of_work().execute_dml(statement.core());
  }
  template <orm::Mapped T>
  Result execute(const orm::Delete<T>& statement) {
    return unit_of_work().execute_dml(statement.core());
  }
  template <class First, class... Items>
  [[nodiscard]] auto scalars(const orm::Select<First, Items...>& statement) {
    using Row = typename orm::Select<First, Items...>::row_type;
    using V = std::tuple_element_t<0, Row>;
    if constexpr (requires { typename First::result_type; }) {
      using T = typename V::element_type;
      return orm::ScalarResult<V>(orm::detail::entity_scalars<T>(unit_of_work().select(statement.core())));
    } else {
      return execute(statement).scalars();
    }
  }
  // The first column of the first row (empty when no row).
  template <class... Items>
  [[nodiscard]] auto scalar(const orm::Select<Items...>& statement) {
    return execute(statement).scalar();
  }

  // The ORM state (for the templates above).
  [[nodiscard]] orm::detail::UnitOfWork& unit_of_work() const;

 private:
  friend class SessionTransaction;
  void release_savepoint(std::size_t depth);
  void rollback_savepoint(std::size_t depth);
  [[nodiscard]] bool savepoint_active(std::size_t depth) const;

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
