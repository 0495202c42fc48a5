// Engine: where connections come from. It owns one QueuePool (the pool/ state machine shared with the daemon)
// and carries out its decisions with blocking libpq, so any number of threads may check out at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pooler/url.hpp"

namespace pooler {
inline namespace client {

class Connection;
class Transaction;
class QueuePool;

namespace detail {
class EngineImpl;
}  // namespace detail

using Seconds = std::chrono::duration<double>;

// What happens to a connection when it goes back to the pool.
enum class ResetOnReturn {
  kRollback,  // ROLLBACK when a transaction is open (SQLAlchemy's default)
  kDiscard,   // ROLLBACK if needed, then DISCARD ALL (drops session state: SET, prepared statements, temp tables)
  kNone,
};

// create_engine's options (every member has an initializer so designated initializers stay -Wextra clean);
// names and defaults as SQLAlchemy's create_engine and QueuePool.
struct EngineOptions {
  int pool_size = 5;
  int max_overflow = 10;  // -1: no limit
  Seconds pool_timeout = std::chrono::seconds(30);
  std::optional<Seconds> pool_recycle{};  // nullopt: never (SQLAlchemy's -1)
  bool pool_pre_ping = false;
  bool pool_use_lifo = false;
  ResetOnReturn pool_reset_on_return = ResetOnReturn::kRollback;
  // "AUTOCOMMIT" (no BEGIN: every statement commits on its own), or "READ COMMITTED", "REPEATABLE READ",
  // "SERIALIZABLE" for the transactions connections begin. Empty: the server's default.
  std::string isolation_level{};
  // Log every statement and its parameters (SQLAlchemy's echo) to echo_sink, or to stderr.
  bool echo = false;
  std::function<void(std::string_view)> echo_sink{};
  // Extra libpq connection keywords (connect_timeout, sslmode, options, …); they win over the URL's.
  std::map<std::string, std::string> connect_args{};
};

// Like SQLAlchemy's Pool.status() and friends; a snapshot.
struct PoolStatus {
  int size = 0;          // pool_size
  int checkedin = 0;     // idle connections
  int checkedout = 0;    // in use by Connections
  int overflow = 0;      // open - pool_size (negative while below pool_size), as SQLAlchemy counts it
  int open = 0;          // every open connection, including ones being opened, pinged or reset
  int waiting = 0;       // threads waiting for a connection
  std::uint64_t checkouts_total = 0;
  std::uint64_t timeouts_total = 0;
  std::uint64_t opens_total = 0;
  std::uint64_t closes_total = 0;
  std::uint64_t invalidations_total = 0;
};

// A view of an engine's pool.
class QueuePool {
 public:
  explicit QueuePool(std::shared_ptr<detail::EngineImpl> impl) : impl_(std::move(impl)) {}
  [[nodiscard]] PoolStatus snapshot() const;
  // "Pool size: 5  Connections in pool: 1 Current Overflow: -3 Current Checked out connections: 1"
  [[nodiscard]] std::string status() const;
  [[nodiscard]] int size() const { return snapshot().size; }
  [[nodiscard]] int checkedin() const { return snapshot().checkedin; }
  [[nodiscard]] int checkedout() const { return snapshot().checkedout; }
  [[nodiscard]] int overflow() const { return snapshot().overflow; }

 private:
  std::shared_ptr<detail::EngineImpl> impl_;
};

// A cheap handle: copies share one pool. The pool lives until the last Engine copy and the last Connection
// checked out of it are gone.
class Engine {
 public:
  Engine(Url url, EngineOptions options);

  // A pooled connection, returned to the pool (reset on return) when the Connection is closed or destroyed.
  // Throws TimeoutError after pool_timeout, OperationalError when no connection can be opened.
  [[nodiscard]] Connection connect() const;
  // A connection with a transaction begun, SQLAlchemy's `with engine.begin() as conn`: the Transaction owns
  // the connection; commit() commits, and leaving it uncommitted (or an exception) rolls back.
  [[nodiscard]] Transaction begin() const;
  // Closes idle connections now; those checked out are closed when they come back. Later checkouts open
  // fresh ones (SQLAlchemy's dispose()).
  void dispose() const;
  [[nodiscard]] QueuePool pool() const { return QueuePool(impl_); }
  [[nodiscard]] const Url& url() const;
  [[nodiscard]] const EngineOptions& options() const;

 private:
  std::shared_ptr<detail::EngineImpl> impl_;
};

// create_engine("postgresql://app:secret@127.0.0.1:5432/app", {.pool_size = 5, .pool_pre_ping = true}).
// Connects lazily: no connection is opened until the first checkout. Throws ArgumentError for a bad URL or
// options the pool rejects.
[[nodiscard]] Engine create_engine(std::string_view url, EngineOptions options = {});
[[nodiscard]] Engine create_engine(Url url, EngineOptions options = {});

}  // namespace client
}  // namespace pooler
