// PoolRuntime: carries out pool::Pool's decisions with real server connections on the loop.
#include "daemon/pool_runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/client_conn.h"
#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "protocol/writer.h"

namespace pooler::daemon {

namespace {

pool::Duration to_duration(config::Seconds s) {
  return std::chrono::duration_cast<pool::Duration>(s);
}

CloseReason metrics_reason(pool::CloseReason r) {
  switch (r) {
    case pool::CloseReason::kRecycle: return CloseReason::kRecycle;
    case pool::CloseReason::kIdleTimeout: return CloseReason::kIdle;
    case pool::CloseReason::kOverflow: return CloseReason::kOverflow;
    case pool::CloseReason::kError: return CloseReason::kError;
    case pool::CloseReason::kInvalidated: return CloseReason::kInvalidated;
    case pool::CloseReason::kShrink: return CloseReason::kShrink;
    case pool::CloseReason::kPingFailed: return CloseReason::kPingFailed;
    case pool::CloseReason::kResetFailed: return CloseReason::kResetFailed;
    case pool::CloseReason::kEvicted: return CloseReason::kEvicted;
  }
  return CloseReason::kError;
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

namespace {

pool::HostRole role_of(const ServerConn& s) {
  const std::string* hs = s.param("in_hot_standby");
  if (hs == nullptr) return pool::HostRole::kUnknown;
  return *hs == "on" ? pool::HostRole::kStandby : pool::HostRole::kPrimary;
}

// libpq's words when a server answers but does not satisfy target_session_attrs.
std::optional<pool::HostRole> misfit_role(const std::string& error) {
  if (error.find("session is read-only") != std::string::npos ||
      error.find("server is in hot standby mode") != std::string::npos) {
    return pool::HostRole::kStandby;
  }
  if (error.find("session is not read-only") != std::string::npos ||
      error.find("server is not in hot standby mode") != std::string::npos) {
    return pool::HostRole::kPrimary;
  }
  return std::nullopt;
}

// A login refusal means the server itself is up and answering.
bool reached_server(const std::string& error) {
  return error.find("password authentication failed") != std::string::npos ||
         error.find("no password supplied") != std::string::npos ||
         error.find("does not exist") != std::string::npos ||
         error.find("no pg_hba.conf entry") != std::string::npos;
}

}  // namespace

// A background connect to a down host whose backoff has ended; success marks it up again so the pool
// refills there without waiting for a client to try.
class PoolRuntime::Prober final : public ServerConnOwner {
 public:
  explicit Prober(PoolRuntime& rt) : rt_(rt) {}
  ~Prober() {
    for (auto& [id, p] : probes_) p.second->close();
  }
  void probe(std::size_t host) {
    for (const auto& [id, p] : probes_) {
      if (p.first == host) return;
    }
    std::uint64_t id = next_id_++;
    spdlog::debug("event=host_probe pool={} host={}", rt_.name_, rt_.hosts_->label(host));
    auto s = std::make_unique<ServerConn>(rt_.daemon_.loop(), this, id);
    ServerConn* raw = s.get();
    probes_.emplace(id, std::make_pair(host, std::move(s)));
    raw->connect(rt_.params_for(host));
  }
  void on_server_connected(ServerConn* s) override {
    auto it = probes_.find(s->id());
    if (it == probes_.end()) return;
    spdlog::info("event=host_up pool={} host={}", rt_.name_, rt_.hosts_->label(it->second.first));
    rt_.hosts_->connected(it->second.first, role_of(*s), now());
    finish(it);
  }
  void on_server_connect_failed(ServerConn* s, std::string error) override {
    auto it = probes_.find(s->id());
    if (it == probes_.end()) return;
    const std::size_t host = it->second.first;
    if (auto role = misfit_role(error)) {
      rt_.hosts_->unfit(host, *role, now());
    } else if (reached_server(error)) {
      // The server answered (only our probe login was refused): the host is up.
      rt_.hosts_->connected(host, pool::HostRole::kUnknown, now());
    } else {
      spdlog::debug("event=host_probe_failed pool={} host={} error={}", rt_.name_, rt_.hosts_->label(host),
                    log_value(error));
      rt_.hosts_->failed(host, fmt::format("{}: {}", rt_.hosts_->label(host), error), now());
    }
    finish(it);
  }
  void on_server_lost(ServerConn*, std::string) override {}

 private:
  using Map = std::unordered_map<std::uint64_t, std::pair<std::size_t, std::unique_ptr<ServerConn>>>;
  void finish(Map::iterator it) {
    std::unique_ptr<ServerConn> s = std::move(it->second.second);
    probes_.erase(it);
    s->close();
    rt_.daemon_.retire(std::move(s));
    rt_.arm_probe_timer();
  }
  PoolRuntime& rt_;
  Map probes_;
  // Probe ids live apart from pool connection ids; they never reach the pool.
  std::uint64_t next_id_ = 1ULL << 62;
};

PoolRuntime::PoolRuntime(Daemon& daemon, config::Database db, std::string user, ServerConnParams params,
                         config::Seconds health_check_period, pool::HostSet* hosts)
    : daemon_(daemon),
      db_(std::move(db)),
      user_(std::move(user)),
      name_(fmt::format("{}/{}", db_.name, user_)),
      params_(std::move(params)),
      health_check_period_(health_check_period),
      pool_(name_, pool_options(db_)),
      metrics_(daemon.metrics().pool(db_.name, user_)),
      hosts_(hosts),
      prober_(std::make_unique<Prober>(*this)) {
  switch (db_.target_session_attrs) {
    case config::TargetSessionAttrs::kAny: want_ = pool::Want::kAny; break;
    case config::TargetSessionAttrs::kReadWrite: want_ = pool::Want::kReadWrite; break;
    case config::TargetSessionAttrs::kReadOnly: want_ = pool::Want::kReadOnly; break;
    case config::TargetSessionAttrs::kPrimary: want_ = pool::Want::kPrimary; break;
    case config::TargetSessionAttrs::kStandby: want_ = pool::Want::kStandby; break;
    case config::TargetSessionAttrs::kPreferStandby: want_ = pool::Want::kPreferStandby; break;
  }
  probe_timer_ = UvHandle<uv_timer_t>::make();
  uv_timer_init(daemon_.loop(), probe_timer_.get());
  probe_timer_->data = this;
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
  daemon_.cancel_deferred_open(this, std::nullopt);
  for (auto& [id, s] : conns_) s->close();
}

void PoolRuntime::retire() {
  retired_ = true;
  std::vector<pool::Action> actions;
  pool::Options o = pool_.options();
  o.pool_size = 0;
  o.max_overflow = 0;
  o.min_pool_size = 0;
  // Nothing kept: idle connections close now, the rest as their clients finish.
  pool_.reconfigure(o, now(), actions);
  run(actions);
}

void PoolRuntime::reconfigure(const config::Database& db, ServerConnParams params, pool::HostSet* hosts,
                              bool identity_changed) {
  db_ = db;
  // Credentials learnt from client logins are not in the config: keep them unless the pool now has a
  // password to log in with.
  const bool has_password = std::any_of(params.libpq.begin(), params.libpq.end(),
                                        [](const auto& kv) { return kv.first == "password"; });
  if (!params.own_login && !has_password) params.own_login = std::move(params_.own_login);
  params_ = std::move(params);
  // query_timeout applies to requests from now on, on every connection.
  for (auto& [id, conn] : conns_) conn->set_query_timeout(params_.query_timeout);
  if (hosts != hosts_) {
    // Host indexes of connects under way refer to the old list: let them finish without retries there.
    for (auto& [id, a] : attempts_) {
      a.candidates.clear();
      a.next = 0;
      a.host = SIZE_MAX;
    }
    hosts_ = hosts;
    prober_ = std::make_unique<Prober>(*this);
  }
  pool::Options o = pool_options(db_);
  std::vector<pool::Action> actions;
  if (auto ok = pool::validate(o); !ok) {
    spdlog::error("event=reload_pool_skipped pool={} error={}", name_, log_value(ok.error().empty() ? "" : ok.error()[0]));
    return;
  }
  pool_.reconfigure(o, now(), actions);
  if (identity_changed) pool_.invalidate(now(), actions);
  run(actions);
  spdlog::info("event=pool_reconfigured pool={} pool_size={} max_overflow={} invalidated={}", name_, db_.pool_size,
               db_.max_overflow, identity_changed);
}

void PoolRuntime::request(ClientConn* c) {
  if (paused_) {
    paused_waiters_.push_back(c);
    return;
  }
  waiters_[c->id()] = Waiting{c, now()};
  std::vector<pool::Action>& actions = scratch_;  // run() empties it; reused to spare an allocation
  pool_.checkout(c->id(), now(), actions);
  run(actions);
}

void PoolRuntime::cancel_request(ClientConn* c) {
  std::erase(paused_waiters_, c);
  if (waiters_.erase(c->id()) == 0) return;
  // If its AssignConn is already under way the connection comes back through release().
  pool_.cancel_waiter(c->id());
  arm_timer();
}

void PoolRuntime::release(ServerConn* s, ReleaseInfo info) {
  std::vector<pool::Action>& actions = scratch_;
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
  // Carrying out an action may queue more (at the end); the buffer keeps its capacity between runs.
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    pool::Action a = std::move(pending_[i]);
    carry_out(a);
  }
  pending_.clear();
  in_run_ = false;
  arm_timer();
  // A connection left idle here may be what an open deferred in another pool is waiting for.
  if (daemon_.has_deferred_opens() && pool_.oldest_idle_since()) daemon_.kick_deferred_opens();
}

bool PoolRuntime::evict_idle(std::string_view for_pool) {
  std::vector<pool::Action> acts;
  if (!pool_.evict_idle(acts)) return false;
  spdlog::info("event=server_evicted pool={} for_pool={} reason=\"max_db_connections or max_user_connections "
               "reached\"",
               name_, for_pool);
  run(acts);
  return true;
}

ServerConn* PoolRuntime::find(std::uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void PoolRuntime::begin_open(std::uint64_t conn, std::vector<pool::Action>& next) {
  Attempt a;
  if (want_ == pool::Want::kPreferStandby) {
    // libpq's prefer-standby: every host as a standby first, then any host.
    for (std::size_t i : hosts_->candidates(pool::Want::kStandby, now())) a.candidates.emplace_back(i, "standby");
    for (std::size_t i : hosts_->candidates(pool::Want::kAny, now())) a.candidates.emplace_back(i, "any");
  } else {
    for (std::size_t i : hosts_->candidates(want_, now())) a.candidates.emplace_back(i, nullptr);
  }
  if (a.candidates.empty()) {
    // Every host is down and backing off: fail now rather than make clients wait for pool_timeout.
    std::string err = fmt::format("no server available: every host is down (last error: {})",
                                  hosts_->last_error().empty() ? "none" : hosts_->last_error());
    spdlog::warn("event=server_connect_skipped pool={} server={} error={}", name_, conn, log_value(err));
    pool_.open_failed(conn, now(), err, next);
    arm_probe_timer();
  } else {
    attempts_[conn] = std::move(a);
    connect_next(conn);
  }
}

void PoolRuntime::start_deferred_open(std::uint64_t conn) {
  if (deferred_.erase(conn) == 0) return;
  std::vector<pool::Action> next;
  begin_open(conn, next);
  run(next);
}

void PoolRuntime::drop(std::uint64_t id) {
  if (deferred_.erase(id) > 0) {
    // Closed by the pool before it ever opened.
    daemon_.cancel_deferred_open(this, id);
    return;
  }
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
    if (daemon_.server_slot_free(*this)) {
      begin_open(open->conn, next);
    } else {
      deferred_.insert(open->conn);
      daemon_.defer_open(this, open->conn);
      spdlog::info("event=server_open_deferred pool={} server={} reason=\"max_db_connections or "
                   "max_user_connections reached\"",
                   name_, open->conn);
    }
  } else if (const auto* close = std::get_if<pool::CloseConn>(&action)) {
    metrics_.server_connections_closed(metrics_reason(close->reason)).Increment();
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
          spdlog::warn("event=pre_ping_failed pool={} server={} error={}", name_, srv->id(), log_value(r.message));
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
        if (ok && discard_all) {
          srv->forget_applied();
          srv->forget_statements();
        }
        if (!ok) spdlog::warn("event=reset_failed pool={} server={} error={}", name_, srv->id(), log_value(r.message));
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
      ClientConn* c = w->second.client;
      auto waited = std::chrono::duration_cast<std::chrono::microseconds>(now() - w->second.since);
      metrics_.checkout_wait_seconds.Observe(static_cast<double>(waited.count()) / 1e6);
      totals_.wait_time_us += static_cast<std::uint64_t>(waited.count());
      waiters_.erase(w);
      c->on_server_assigned(s);
    }
  } else if (const auto* fail = std::get_if<pool::FailWaiter>(&action)) {
    auto w = waiters_.find(fail->waiter);
    if (w != waiters_.end()) {
      ClientConn* c = w->second.client;
      waiters_.erase(w);
      if (fail->reason == pool::FailReason::kTimeout) metrics_.timeouts.Increment();
      protocol::ErrorFields e;
      e.severity = protocol::Severity::kError;
      e.sqlstate = fail->reason == pool::FailReason::kTimeout ? "53300" : "08006";
      e.message = fail->message;
      spdlog::warn("event=checkout_failed pool={} client={} reason={} message={}", name_, c->id(),
                   pool::to_string(fail->reason), log_value(fail->message));
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

void PoolRuntime::refresh_metrics() {
  pool::Pool::Stats st = pool_.stats();
  metrics_.pool_size.Set(db_.pool_size);
  metrics_.max_overflow.Set(db_.max_overflow);
  metrics_.servers_idle.Set(st.idle);
  metrics_.servers_active.Set(st.active + st.resetting);
  metrics_.servers_opening.Set(st.opening);
  metrics_.servers_testing.Set(st.pinging);
  metrics_.overflow_in_use.Set(st.overflow_in_use);
  if (st.ping_failures_total > seen_ping_failures_) {
    metrics_.pre_ping_failures.Increment(static_cast<double>(st.ping_failures_total - seen_ping_failures_));
    seen_ping_failures_ = st.ping_failures_total;
  }
  if (st.invalidations_total > seen_invalidations_) {
    metrics_.invalidations.Increment(static_cast<double>(st.invalidations_total - seen_invalidations_));
    seen_invalidations_ = st.invalidations_total;
  }
  // The relay counts into totals_ (plain integers); the counters catch up here.
  auto catch_up = [](prometheus::Counter& c, std::uint64_t total, std::uint64_t& seen) {
    if (total > seen) c.Increment(static_cast<double>(total - seen));
    seen = total;
  };
  catch_up(metrics_.client_to_server_bytes, totals_.received, seen_received_);
  catch_up(metrics_.server_to_client_bytes, totals_.sent, seen_sent_);
  catch_up(metrics_.queries, totals_.queries, seen_queries_);
}

void PoolRuntime::pause() { paused_ = true; }

void PoolRuntime::resume() {
  paused_ = false;
  std::vector<ClientConn*> waiting = std::move(paused_waiters_);
  paused_waiters_.clear();
  for (ClientConn* c : waiting) request(c);
}

void PoolRuntime::kill() {
  std::vector<ClientConn*> linked;
  for (auto& [id, s] : conns_) {
    if (s->client() != nullptr) linked.push_back(s->client());
  }
  for (ClientConn* c : linked) c->fatal("57P01", "terminating connection: database killed by the pooler's admin");
  std::vector<pool::Action> actions;
  pool_.invalidate(now(), actions);
  run(actions);
}

void PoolRuntime::reconnect() {
  std::vector<pool::Action> actions;
  pool_.invalidate(now(), actions);
  run(actions);
}

void PoolRuntime::on_health_timer(uv_timer_t* t) noexcept {
  auto* self = static_cast<PoolRuntime*>(t->data);
  if (self == nullptr) return;
  std::vector<pool::Action> actions;
  self->pool_.check_idle(std::chrono::duration_cast<pool::Duration>(self->health_check_period_), now(), actions);
  if (!actions.empty()) spdlog::debug("event=idle_check pool={} connections={}", self->name_, actions.size());
  self->run(actions);
}

ServerConnParams PoolRuntime::params_for(std::size_t host, const char* tsa) const {
  ServerConnParams p = params_;
  const config::HostPort& hp = db_.hosts.at(host);
  p.libpq.emplace_back("host", hp.host);
  p.libpq.emplace_back("port", std::to_string(hp.port));
  // prefer-standby is done by our candidate order (a "standby" pass, then "any"), one host per attempt.
  static constexpr const char* kTsa[] = {"any", "read-write", "read-only", "primary", "standby", "any"};
  p.libpq.emplace_back("target_session_attrs", tsa != nullptr ? tsa : kTsa[static_cast<int>(db_.target_session_attrs)]);
  return p;
}

bool PoolRuntime::connect_next(std::uint64_t id) {
  auto it = attempts_.find(id);
  if (it == attempts_.end() || it->second.next >= it->second.candidates.size()) return false;
  Attempt& a = it->second;
  const char* tsa = nullptr;
  for (;;) {
    if (a.next >= a.candidates.size()) return false;
    std::tie(a.host, tsa) = a.candidates[a.next++];
    // A host that could not be reached earlier in this same attempt is not tried twice (prefer-standby lists
    // each host twice: a misfit in the standby pass is still tried in the "any" pass).
    if (std::find(a.failed.begin(), a.failed.end(), a.host) != a.failed.end()) continue;
    break;
  }
  a.started = now();
  auto s = std::make_unique<ServerConn>(daemon_.loop(), this, id);
  ServerConn* raw = s.get();
  raw->set_accounting(&metrics_, &totals_);
  raw->set_host_index(a.host);
  conns_[id] = std::move(s);
  spdlog::debug("event=server_connecting pool={} server={} host={}", name_, id, hosts_->label(a.host));
  raw->connect(params_for(a.host, tsa));
  return true;
}

void PoolRuntime::on_server_connected(ServerConn* s) {
  spdlog::debug("event=server_connected pool={} server={} host={} backend_pid={}", name_, s->id(), s->host_label(),
                s->backend_pid());
  metrics_.server_connections_opened.Increment();
  if (auto it = attempts_.find(s->id()); it != attempts_.end()) {
    hosts_->connected(it->second.host, role_of(*s), now());
    auto took = std::chrono::duration<double>(now() - it->second.started).count();
    daemon_.metrics().host(db_.name, hosts_->label(it->second.host)).connect_duration_seconds.Observe(took);
    attempts_.erase(it);
  }
  if (login_params_.empty()) login_params_ = s->params();
  std::vector<pool::Action> actions;
  pool_.opened(s->id(), now(), actions);
  run(actions);
}

void PoolRuntime::on_server_connect_failed(ServerConn* s, std::string error) {
  std::uint64_t id = s->id();
  metrics_.server_connections_failed.Increment();
  auto it = attempts_.find(id);
  if (it != attempts_.end()) {
    const std::size_t host = it->second.host;
    const std::string& label = hosts_->label(host);
    if (auto role = misfit_role(error)) {
      spdlog::info("event=server_unfit pool={} server={} host={} error={}", name_, id, label, log_value(error));
      hosts_->unfit(host, *role, now());
    } else {
      spdlog::warn("event=server_connect_failed pool={} server={} host={} error={}", name_, id, label, log_value(error));
      hosts_->failed(host, fmt::format("{}: {}", label, error), now());
      it->second.failed.push_back(host);
    }
    error = fmt::format("{}: {}", label, error);
  }
  auto cur = conns_.find(id);
  if (cur != conns_.end() && cur->second.get() == s) drop(id);
  // Next host, if any: one OpenConn tries every candidate before the pool hears of a failure.
  if (connect_next(id)) return;
  attempts_.erase(id);
  arm_probe_timer();
  std::vector<pool::Action> actions;
  pool_.open_failed(id, now(), error, actions);
  run(actions);
}

void PoolRuntime::arm_probe_timer() {
  if (!probe_timer_) return;
  auto when = hosts_->next_retry();
  if (!when) {
    uv_timer_stop(probe_timer_.get());
    return;
  }
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*when - now()).count();
  // A due host whose probe is still running: look again shortly rather than spin.
  std::uint64_t ms = delay <= 0 ? 100 : static_cast<std::uint64_t>(delay) + 2;
  uv_timer_start(probe_timer_.get(), &PoolRuntime::on_probe_timer, ms, 0);
}

void PoolRuntime::on_probe_timer(uv_timer_t* t) noexcept {
  auto* self = static_cast<PoolRuntime*>(t->data);
  if (self == nullptr) return;
  self->probe_hosts();
}

void PoolRuntime::probe_all() {
  for (std::size_t i = 0; i < hosts_->hosts().size(); ++i) prober_->probe(i);
}

void PoolRuntime::probe_hosts() {
  for (std::size_t host : hosts_->due_for_retry(now())) prober_->probe(host);
  // libuv's timers run on its cached loop time and may fire a hair early: always re-arm for what is left.
  arm_probe_timer();
}

void PoolRuntime::on_server_lost(ServerConn* s, std::string reason) {
  std::uint64_t id = s->id();
  if (conns_.find(id) == conns_.end()) return;  // already closed on the pool's own decision
  spdlog::info("event=server_lost pool={} server={} reason={}", name_, id, log_value(reason));
  std::vector<pool::Action> actions;
  pool_.lost(id, now(), actions);
  if (s->shutdown_seen()) {
    // The server restarted or is shutting down: every connection opened before now is suspect, and the
    // host is probed at once (readiness follows what the probe finds).
    spdlog::warn("event=pool_invalidated pool={} reason=\"server shutdown\"", name_);
    pool_.invalidate(now(), actions);
    // 57P01 is also what pg_terminate_backend sends: check the host with a probe rather than assume.
    if (s->host_index() < hosts_->hosts().size()) prober_->probe(s->host_index());
  }
  drop(id);
  run(actions);
}

}  // namespace pooler::daemon
