// The engine's insides: a pool::Pool driven under one mutex, whose actions (open, ping, reset, close) the
// calling thread carries out with blocking libpq outside the lock; waiters sleep on a condition variable
// until the pool assigns them a connection or fails them, waking at the pool's next deadline to tick() it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <libpq-fe.h>

#include "pool/action.h"
#include "pool/pool.h"
#include "pooler/engine.hpp"
#include "pooler/errors.hpp"
#include "pooler/url.hpp"

namespace pooler::client::detail {

// A connection checked out of the pool.
struct Lease {
  pool::ConnId id = 0;
  PGconn* conn = nullptr;
};

class EngineImpl {
 public:
  EngineImpl(Url url, EngineOptions options);
  ~EngineImpl();
  EngineImpl(const EngineImpl&) = delete;
  EngineImpl& operator=(const EngineImpl&) = delete;

  // Blocks until the pool hands this thread a connection; throws TimeoutError / OperationalError.
  [[nodiscard]] Lease checkout();
  // Back to the pool (reset there as configured).
  void checkin(const Lease& lease) noexcept;
  // The connection is broken: closed, and with `invalidate_pool` every older connection too (a lost
  // connection usually means the server restarted).
  void discard(const Lease& lease, bool invalidate_pool) noexcept;
  void dispose();
  [[nodiscard]] PoolStatus status();

  [[nodiscard]] const Url& url() const { return url_; }
  [[nodiscard]] const EngineOptions& options() const { return options_; }
  [[nodiscard]] bool autocommit() const { return autocommit_; }
  [[nodiscard]] const std::string& begin_sql() const { return begin_sql_; }
  void echo(std::string_view line) const;
  [[nodiscard]] bool echo_enabled() const { return options_.echo; }

 private:
  struct Failure {
    pool::FailReason reason;
    std::string message;
  };
  using Outcome = std::variant<pool::ConnId, Failure>;

  // Carries out `actions` and everything they lead to. Called with `lock` held; releases it around I/O.
  void run(std::unique_lock<std::mutex>& lock, std::vector<pool::Action>& actions) noexcept;
  [[nodiscard]] PGconn* open(std::string& error) const;
  [[nodiscard]] static bool ping(PGconn* conn);
  [[nodiscard]] static bool reset(PGconn* conn, pool::ResetOnReturn how);

  Url url_;
  EngineOptions options_;
  bool autocommit_ = false;
  std::string begin_sql_;
  std::vector<std::string> keywords_;  // for PQconnectdbParams, with values_
  std::vector<std::string> values_;

  std::mutex mutex_;
  std::condition_variable cv_;
  pool::Pool pool_;
  // Every libpq connection the pool counts as open and that has finished opening, whatever its state.
  std::unordered_map<pool::ConnId, PGconn*> conns_;
  // Decisions for waiting threads, taken out by the waiter they name.
  std::unordered_map<pool::WaiterId, Outcome> outcomes_;
  pool::WaiterId next_waiter_ = 1;
};

// Translates a libpq failure into the right DBError and throws it.
[[noreturn]] void throw_from_result(PGconn* conn, const PGresult* result, std::string_view statement,
                                    bool connection_lost);

}  // namespace pooler::client::detail
