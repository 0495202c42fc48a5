// PoolRuntime: carries out pool::Pool's decisions with real server connections on the loop.
#include "daemon/pool_runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/client_conn.h"
#include "daemon/daemon.h"
#include "protocol/writer.h"

namespace pooler::daemon {

namespace {

pool::Duration to_duration(config::Seconds s) {
  return std::chrono::duration_cast<pool::Duration>(s);
}

pool::Options pool_options(const config::Database& db) {
  pool::Options o;
  o.pool_size = db.pool_size;
  o.max_overflow = db.max_overflow;
  o.pool_timeout = to_duration(db.pool_timeout);
  if (db.pool_recycle) o.pool_recycle = to_duration(*db.pool_recycle);
  o.pre_ping = db.pool_pre_ping;
  o.pre_ping_after = to_duration(db.pre_ping_after);
  o.use_lifo = db.use_lifo;
  switch (db.effective_reset()) {
    case config::ResetOnReturn::kRollback:
      o.reset_on_return = pool::ResetOnReturn::kRollback;
      break;
    case config::ResetOnReturn::kDiscard:
      o.reset_on_return = pool::ResetOnReturn::kDiscard;
      break;
    case config::ResetOnReturn::kNone:
      o.reset_on_return = pool::ResetOnReturn::kNone;
      break;
  }
  o.min_pool_size = db.min_pool_size;
  if (db.idle_timeout) o.idle_timeout = to_duration(*db.idle_timeout);
  return o;
}

}  // namespace

PoolRuntime::PoolRuntime(Daemon& daemon, config::Database db, std::string user, ServerConnParams params,
                         config::Seconds health_check_period)
    : daemon_(daemon),
      db_(std::move(db)),
      user_(std::move(user)),
      name_(fmt::format("{}/{}", db_.name, user_)),
      params_(std::move(params)),
      health_check_period_(health_check_period),
      pool_(name_, pool_options(db_)) {
  timer_ = UvHandle<uv_timer_t>::make();
  uv_timer_init(daemon_.loop(), timer_.get());
  timer_->data = this;
  health_timer_ = UvHandle<uv_timer_t>::make();
  uv_timer_init(daemon_.loop(), health_timer_.get());
  health_timer_->data = this;
  auto period_ms = static_cast<std::uint64_t>(std::max(100.0, health_check_period_.count() * 1000.0));
  uv_timer_start(health_timer_.get(), &PoolRuntime::on_health_timer, period_ms, period_ms);
  // Fill up to min_pool_size right away.
  std::vector<pool::Action> actions;
  pool_.tick(now(), actions);
  run(actions);
}

PoolRuntime::~PoolRuntime() {
  for (auto& [id, s] : conns_) s->close();
}

void PoolRuntime::request(ClientConn* c) {
  waiters_[c->id()] = c;
  std::vector<pool::Action> actions;
  pool_.checkout(c->id(), now(), actions);
  run(actions);
}

void PoolRuntime::cancel_request(ClientConn* c) {
  if (waiters_.erase(c->id()) == 0) return;
  // If its AssignConn is already under way the connection comes back through release().
  pool_.cancel_waiter(c->id());
  arm_timer();
}

void PoolRuntime::release(ServerConn* s, ReleaseInfo info) {
  std::vector<pool::Action> actions;
  auto it = conns_.find(s->id());
  if (it == conns_.end()) return;  // already lost and forgotten
  if (s->state() == ServerConn::State::kClosed || !info.client_stream_clean) {
    // The client left in the middle of a message: the server's view of the stream cannot be repaired.
    pool_.discard(s->id(), now(), actions);
    run(actions);
    return;
  }
  if (s->is_clean()) {
    pool_.checkin(s->id(), now(), actions);
    run(actions);
    return;
  }
  // A request is still running (or COPY is open): cancel it, finish the protocol exchange, then reset.
  // The connection stays checked out meanwhile, so nobody else can get it half-way.
  std::string raw;
  int requests = 0;
  if (s->outstanding() > 0) s->cancel_running_query();
  if (s->in_copy()) {
    std::size_t start = protocol::begin_message(raw, 'f');
    protocol::append_cstring(raw, "client disconnected during COPY");
    protocol::finish_message(raw, start);
  }
  if (info.unsynced) {
    protocol::write_sync(raw);
    requests = 1;
  }
  spdlog::debug("event=server_drain pool={} server={} outstanding={}", name_, s->id(), s->outstanding());
  s->drain_internal(raw, requests, [this](ServerConn* srv, const InternalResult&) {
    std::vector<pool::Action> acts;
    if (conns_.find(srv->id()) == conns_.end()) return;
    if (srv->state() != ServerConn::State::kClosed && srv->is_clean()) {
      pool_.checkin(srv->id(), now(), acts);
    } else {
      pool_.discard(srv->id(), now(), acts);
    }
    run(acts);
  }, /*long_wait=*/true);
}

void PoolRuntime::run(std::vector<pool::Action>& actions) {
  for (auto& a : actions) pending_.push_back(std::move(a));
  actions.clear();
  if (in_run_) return;  // an outer run() is draining; nested events only queue
  in_run_ = true;
  while (!pending_.empty()) {
    pool::Action a = std::move(pending_.front());
    pending_.pop_front();
    carry_out(a);
  }
  in_run_ = false;
  arm_timer();
}

ServerConn* PoolRuntime::find(std::uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void PoolRuntime::drop(std::uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  std::unique_ptr<ServerConn> s = std::move(it->second);
  conns_.erase(it);
  s->close();
  daemon_.retire(std::move(s));
}

void PoolRuntime::carry_out(const pool::Action& action) {
  std::vector<pool::Action> next;
  if (const auto* open = std::get_if<pool::OpenConn>(&action)) {
    auto s = std::make_unique<ServerConn>(daemon_.loop(), this, open->conn);
    ServerConn* raw = s.get();
    conns_.emplace(open->conn, std::move(s));
    spdlog::debug("event=server_connecting pool={} server={}", name_, open->conn);
    raw->connect(params_);
  } else if (const auto* close = std::get_if<pool::CloseConn>(&action)) {
    spdlog::debug("event=server_close pool={} server={} reason={}", name_, close->conn, pool::to_string(close->reason));
    drop(close->conn);
  } else if (const auto* ping = std::get_if<pool::PingConn>(&action)) {
    ServerConn* s = find(ping->conn);
    if (s == nullptr || s->state() != ServerConn::State::kIdle) {
      pool_.ping_failed(ping->conn, now(), next);
    } else {
      // An empty query is the cheapest full round trip: EmptyQueryResponse + ReadyForQuery.
      s->run_internal({""}, [this](ServerConn* srv, const InternalResult& r) {
        std::vector<pool::Action> acts;
        if (conns_.find(srv->id()) == conns_.end()) return;
        if (r.ok && srv->state() == ServerConn::State::kIdle) {
          pool_.ping_ok(srv->id(), now(), acts);
        } else {
          spdlog::warn("event=pre_ping_failed pool={} server={} error=\"{}\"", name_, srv->id(), r.message);
          pool_.ping_failed(srv->id(), now(), acts);
        }
        run(acts);
      });
    }
  } else if (const auto* reset = std::get_if<pool::ResetConn>(&action)) {
    ServerConn* s = find(reset->conn);
    std::vector<std::string> sql;
    if (s != nullptr && s->state() == ServerConn::State::kIdle) {
      // An open transaction never goes to anyone else, whatever reset_on_return says.
      if (s->tx_status() != 'I') sql.emplace_back("ROLLBACK");
      if (reset->how == pool::ResetOnReturn::kDiscard) sql.emplace_back("DISCARD ALL");
    }
    if (s == nullptr || s->state() != ServerConn::State::kIdle) {
      pool_.reset_done(reset->conn, false, now(), next);
    } else if (sql.empty()) {
      pool_.reset_done(reset->conn, true, now(), next);
    } else {
      bool discard_all = reset->how == pool::ResetOnReturn::kDiscard;
      s->run_internal(sql, [this, discard_all](ServerConn* srv, const InternalResult& r) {
        std::vector<pool::Action> acts;
        if (conns_.find(srv->id()) == conns_.end()) return;
        bool ok = r.ok && srv->state() == ServerConn::State::kIdle && srv->tx_status() == 'I';
        if (ok && discard_all) srv->forget_applied();
        if (!ok) spdlog::warn("event=reset_failed pool={} server={} error=\"{}\"", name_, srv->id(), r.message);
        pool_.reset_done(srv->id(), ok, now(), acts);
        run(acts);
      });
    }
  } else if (const auto* assign = std::get_if<pool::AssignConn>(&action)) {
    ServerConn* s = find(assign->conn);
    auto w = waiters_.find(assign->waiter);
    if (w == waiters_.end() || s == nullptr) {
      // The waiter left after the decision was made: give the connection straight back.
      if (s != nullptr) pool_.checkin(assign->conn, now(), next);
    } else {
      ClientConn* c = w->second;
      waiters_.erase(w);
      c->on_server_assigned(s);
    }
  } else if (const auto* fail = std::get_if<pool::FailWaiter>(&action)) {
    auto w = waiters_.find(fail->waiter);
    if (w != waiters_.end()) {
      ClientConn* c = w->second;
      waiters_.erase(w);
      protocol::ErrorFields e;
      e.severity = protocol::Severity::kError;
      e.sqlstate = fail->reason == pool::FailReason::kTimeout ? "53300" : "08006";
      e.message = fail->message;
      spdlog::warn("event=checkout_failed pool={} client={} reason={} message=\"{}\"", name_, c->id(),
                   pool::to_string(fail->reason), fail->message);
      c->on_checkout_failed(e);
    }
  }
  if (!next.empty()) {
    for (auto& a : next) pending_.push_back(std::move(a));
  }
}

void PoolRuntime::arm_timer() {
  if (!timer_) return;
  auto deadline = pool_.next_deadline();
  if (!deadline) {
    uv_timer_stop(timer_.get());
    return;
  }
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - now()).count();
  // Round up so the tick lands at or after the deadline.
  std::uint64_t ms = delay <= 0 ? 0 : static_cast<std::uint64_t>(delay) + 1;
  uv_timer_start(timer_.get(), &PoolRuntime::on_timer, ms, 0);
}

void PoolRuntime::on_timer(uv_timer_t* t) noexcept {
  auto* self = static_cast<PoolRuntime*>(t->data);
  if (self == nullptr) return;
  std::vector<pool::Action> actions;
  self->pool_.tick(now(), actions);
  self->run(actions);
}

void PoolRuntime::on_health_timer(uv_timer_t* t) noexcept {
  auto* self = static_cast<PoolRuntime*>(t->data);
  if (self == nullptr) return;
  std::vector<pool::Action> actions;
  self->pool_.check_idle(std::chrono::duration_cast<pool::Duration>(self->health_check_period_), now(), actions);
  if (!actions.empty()) spdlog::debug("event=idle_check pool={} connections={}", self->name_, actions.size());
  self->run(actions);
}

void PoolRuntime::on_server_connected(ServerConn* s) {
  spdlog::debug("event=server_connected pool={} server={} host={} backend_pid={}", name_, s->id(), s->host_label(),
                s->backend_pid());
  if (login_params_.empty()) login_params_ = s->params();
  std::vector<pool::Action> actions;
  pool_.opened(s->id(), now(), actions);
  run(actions);
}

void PoolRuntime::on_server_connect_failed(ServerConn* s, std::string error) {
  spdlog::warn("event=server_connect_failed pool={} server={} error=\"{}\"", name_, s->id(), error);
  std::uint64_t id = s->id();
  std::vector<pool::Action> actions;
  pool_.open_failed(id, now(), error, actions);
  drop(id);
  run(actions);
}

void PoolRuntime::on_server_lost(ServerConn* s, std::string reason) {
  std::uint64_t id = s->id();
  if (conns_.find(id) == conns_.end()) return;  // already closed on the pool's own decision
  spdlog::info("event=server_lost pool={} server={} reason=\"{}\"", name_, id, reason);
  std::vector<pool::Action> actions;
  pool_.lost(id, now(), actions);
  if (s->shutdown_seen()) {
    // The server restarted or is shutting down: every connection opened before now is suspect.
    spdlog::warn("event=pool_invalidated pool={} reason=\"server shutdown\"", name_);
    pool_.invalidate(now(), actions);
  }
  drop(id);
  run(actions);
}

}  // namespace pooler::daemon
