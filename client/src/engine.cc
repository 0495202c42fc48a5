// Engine: the pool/ state machine carried out with blocking libpq (see engine_impl.h).
#include <algorithm>
#include <deque>
#include <iostream>
#include <utility>

#include <fmt/format.h>

#include "client/src/engine_impl.h"
#include "pool/options.h"
#include "pool/policy.h"
#include "pooler/connection.hpp"
#include "client/src/connection_state.h"

namespace pooler::client {
namespace detail {
namespace {

pool::ResetOnReturn to_pool(ResetOnReturn r) {
  switch (r) {
    case ResetOnReturn::kRollback:
      return pool::ResetOnReturn::kRollback;
    case ResetOnReturn::kDiscard:
      return pool::ResetOnReturn::kDiscard;
    case ResetOnReturn::kNone:
      return pool::ResetOnReturn::kNone;
  }
  return pool::ResetOnReturn::kRollback;
}

pool::Options pool_options(const EngineOptions& o) {
  pool::Options p;
  p.pool_size = o.pool_size;
  p.max_overflow = o.max_overflow;
  if (o.pool_timeout.count() < 0) throw ArgumentError("pool_timeout must not be negative");
  p.pool_timeout = std::chrono::duration_cast<pool::Duration>(o.pool_timeout);
  if (o.pool_recycle && o.pool_recycle->count() >= 0) {
    p.pool_recycle = std::chrono::duration_cast<pool::Duration>(*o.pool_recycle);
  }
  p.pre_ping = o.pool_pre_ping;
  p.pre_ping_after = pool::Duration::zero();
  p.use_lifo = o.pool_use_lifo;
  p.reset_on_return = to_pool(o.pool_reset_on_return);
  if (auto ok = pool::validate(p); !ok) {
    std::string all;
    for (const auto& e : ok.error()) all += (all.empty() ? "" : "; ") + e;
    throw ArgumentError("invalid engine options: " + all);
  }
  return p;
}

std::string pool_name(const Url& url) {
  return fmt::format("{}/{}", url.database.value_or(""), url.username.value_or(""));
}

std::string upper(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

}  // namespace

EngineImpl::EngineImpl(Url url, EngineOptions options)
    : url_(std::move(url)), options_(std::move(options)), pool_(pool_name(url_), pool_options(options_)) {
  std::string level = upper(options_.isolation_level);
  std::ranges::replace(level, '_', ' ');
  if (level.empty()) {
    begin_sql_ = "BEGIN";
  } else if (level == "AUTOCOMMIT") {
    autocommit_ = true;
    begin_sql_ = "BEGIN";
  } else if (level == "READ COMMITTED" || level == "REPEATABLE READ" || level == "SERIALIZABLE" ||
             level == "READ UNCOMMITTED") {
    begin_sql_ = "BEGIN ISOLATION LEVEL " + level;
  } else {
    throw ArgumentError(fmt::format(
        "invalid isolation_level '{}': use AUTOCOMMIT, READ COMMITTED, REPEATABLE READ or SERIALIZABLE",
        options_.isolation_level));
  }
  std::vector<std::pair<std::string, std::string>> kv = url_.to_conninfo();
  for (const auto& [k, v] : options_.connect_args) {
    auto it = std::ranges::find_if(kv, [&](const auto& p) { return p.first == k; });
    if (it != kv.end()) {
      it->second = v;
    } else {
      kv.emplace_back(k, v);
    }
  }
  // Every keyword must be one libpq knows, so a typo fails here rather than at the first connect.
  PQconninfoOption* defaults = PQconndefaults();
  for (const auto& [k, v] : kv) {
    bool known = false;
    for (PQconninfoOption* o = defaults; o != nullptr && o->keyword != nullptr; ++o) {
      if (k == o->keyword) known = true;
    }
    if (!known) {
      PQconninfoFree(defaults);
      throw ArgumentError(fmt::format("unknown libpq connection option '{}'", k));
    }
    keywords_.push_back(k);
    values_.push_back(v);
  }
  PQconninfoFree(defaults);
}

EngineImpl::~EngineImpl() {
  for (auto& [id, conn] : conns_) PQfinish(conn);
}

void EngineImpl::echo(std::string_view line) const {
  if (options_.echo_sink) {
    options_.echo_sink(line);
  } else {
    std::clog << "pooler.engine " << line << '\n';
  }
}

PGconn* EngineImpl::open(std::string& error) const {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (std::size_t i = 0; i < keywords_.size(); ++i) {
    keys.push_back(keywords_[i].c_str());
    values.push_back(values_[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
  if (conn == nullptr) {
    error = "out of memory";
    return nullptr;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
    PQfinish(conn);
    return nullptr;
  }
  return conn;
}

bool EngineImpl::ping(PGconn* conn) {
  // An empty query costs one round trip and no parsing (EmptyQueryResponse), as the daemon's pre-ping.
  PGresult* r = PQexec(conn, "");
  bool ok = r != nullptr && PQresultStatus(r) == PGRES_EMPTY_QUERY && PQstatus(conn) == CONNECTION_OK;
  PQclear(r);
  return ok;
}

bool EngineImpl::reset(PGconn* conn, pool::ResetOnReturn how) {
  if (PQstatus(conn) != CONNECTION_OK) return false;
  if (how == pool::ResetOnReturn::kNone) return true;
  auto exec = [&](const char* sql) {
    PGresult* r = PQexec(conn, sql);
    bool ok = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
  };
  // libpq knows the transaction status from the last ReadyForQuery: no round trip when there is nothing
  // to roll back (psycopg does the same).
  PGTransactionStatusType ts = PQtransactionStatus(conn);
  if (ts == PQTRANS_ACTIVE || ts == PQTRANS_UNKNOWN) return false;
  if (ts != PQTRANS_IDLE && !exec("ROLLBACK")) return false;
  if (how == pool::ResetOnReturn::kDiscard && !exec("DISCARD ALL")) return false;
  return true;
}

void EngineImpl::run(std::unique_lock<std::mutex>& lock, std::vector<pool::Action>& actions) noexcept {
  std::deque<pool::Action> todo(std::make_move_iterator(actions.begin()), std::make_move_iterator(actions.end()));
  actions.clear();
  auto now = [] { return pool::Clock::now(); };
  while (!todo.empty()) {
    pool::Action action = std::move(todo.front());
    todo.pop_front();
    std::visit(
        [&](auto& a) {
          using A = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<A, pool::OpenConn>) {
            lock.unlock();
            std::string error;
            PGconn* conn = open(error);
            lock.lock();
            if (conn != nullptr) {
              conns_[a.conn] = conn;
              pool_.opened(a.conn, now(), actions);
            } else {
              pool_.open_failed(a.conn, now(), error, actions);
            }
          } else if constexpr (std::is_same_v<A, pool::CloseConn>) {
            auto it = conns_.find(a.conn);
            if (it != conns_.end()) {
              PGconn* conn = it->second;
              conns_.erase(it);
              lock.unlock();
              PQfinish(conn);
              lock.lock();
            }
          } else if constexpr (std::is_same_v<A, pool::PingConn>) {
            PGconn* conn = conns_.at(a.conn);
            lock.unlock();
            bool ok = ping(conn);
            lock.lock();
            if (ok) {
              pool_.ping_ok(a.conn, now(), actions);
            } else {
              pool_.ping_failed(a.conn, now(), actions);
            }
          } else if constexpr (std::is_same_v<A, pool::ResetConn>) {
            PGconn* conn = conns_.at(a.conn);
            lock.unlock();
            bool ok = reset(conn, a.how);
            lock.lock();
            pool_.reset_done(a.conn, ok, now(), actions);
          } else if constexpr (std::is_same_v<A, pool::AssignConn>) {
            outcomes_[a.waiter] = a.conn;
            cv_.notify_all();
          } else if constexpr (std::is_same_v<A, pool::FailWaiter>) {
            outcomes_[a.waiter] = Failure{a.reason, a.message};
            cv_.notify_all();
          }
        },
        action);
    for (auto& a : actions) todo.push_back(std::move(a));
    actions.clear();
  }
}

Lease EngineImpl::checkout() {
  std::unique_lock lock(mutex_);
  const pool::WaiterId me = next_waiter_++;
  std::vector<pool::Action> actions;
  pool_.checkout(me, pool::Clock::now(), actions);
  run(lock, actions);
  for (;;) {
    if (auto it = outcomes_.find(me); it != outcomes_.end()) {
      Outcome outcome = std::move(it->second);
      outcomes_.erase(it);
      if (auto* id = std::get_if<pool::ConnId>(&outcome)) return Lease{*id, conns_.at(*id)};
      auto& failure = std::get<Failure>(outcome);
      if (failure.reason == pool::FailReason::kTimeout) throw TimeoutError(failure.message);
      ErrorInfo info;
      info.sqlstate = "08001";  // sqlclient_unable_to_establish_sqlconnection
      info.message = failure.message;
      throw_db_error(std::move(info));
    }
    // Whoever wakes first at the pool's deadline ticks it for everyone (timeouts, recycling).
    std::optional<pool::TimePoint> deadline = pool_.next_deadline();
    if (!deadline) {
      cv_.wait(lock);
    } else if (pool::Clock::now() >= *deadline) {
      pool_.tick(pool::Clock::now(), actions);
      run(lock, actions);
    } else {
      cv_.wait_until(lock, *deadline);
    }
  }
}

void EngineImpl::checkin(const Lease& lease) noexcept {
  std::unique_lock lock(mutex_);
  std::vector<pool::Action> actions;
  pool_.checkin(lease.id, pool::Clock::now(), actions);
  run(lock, actions);
}

void EngineImpl::discard(const Lease& lease, bool invalidate_pool) noexcept {
  std::unique_lock lock(mutex_);
  std::vector<pool::Action> actions;
  pool_.discard(lease.id, pool::Clock::now(), actions);
  if (invalidate_pool) pool_.invalidate(pool::Clock::now(), actions);
  run(lock, actions);
}

void EngineImpl::dispose() {
  std::unique_lock lock(mutex_);
  std::vector<pool::Action> actions;
  pool_.invalidate(pool::Clock::now(), actions);
  run(lock, actions);
}

PoolStatus EngineImpl::status() {
  std::unique_lock lock(mutex_);
  pool::Pool::Stats s = pool_.stats();
  PoolStatus out;
  out.size = pool_.options().pool_size;
  out.checkedin = s.idle;
  out.checkedout = s.active;
  out.open = s.total;
  out.overflow = s.total - out.size;
  out.waiting = s.waiting;
  out.checkouts_total = s.checkouts_total;
  out.timeouts_total = s.timeouts_total;
  out.opens_total = s.opens_total;
  out.closes_total = s.closes_total;
  out.invalidations_total = s.invalidations_total;
  return out;
}

}  // namespace detail

PoolStatus QueuePool::snapshot() const { return impl_->status(); }

std::string QueuePool::status() const {
  PoolStatus s = snapshot();
  return fmt::format("Pool size: {}  Connections in pool: {} Current Overflow: {} Current Checked out connections: {}",
                     s.size, s.checkedin, s.overflow, s.checkedout);
}

Engine::Engine(Url url, EngineOptions options)
    : impl_(std::make_shared<detail::EngineImpl>(std::move(url), std::move(options))) {}

Connection Engine::connect() const {
  auto state = std::make_shared<detail::ConnectionState>(impl_);
  state->acquire();
  return Connection(std::move(state));
}

Transaction Engine::begin() const {
  auto state = std::make_shared<detail::ConnectionState>(impl_);
  state->acquire();
  state->begin_root();
  return Transaction(std::move(state), 0, true);
}

void Engine::dispose() const { impl_->dispose(); }
const Url& Engine::url() const { return impl_->url(); }
const EngineOptions& Engine::options() const { return impl_->options(); }

Engine create_engine(std::string_view url, EngineOptions options) {
  return Engine(Url::parse(url), std::move(options));
}
Engine create_engine(Url url, EngineOptions options) { return Engine(std::move(url), std::move(options)); }

}  // namespace pooler::client
