// Daemon: listeners, accept, the client registry and cancel keys, pools, signals and deferred frees.
#include "daemon/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "config/diff.h"
#include "config/enum_names.h"
#include "daemon/client_conn.h"
#include "daemon/logging.h"
#include "daemon/sd_notify.h"
#include "daemon/pool_runtime.h"
#include "daemon/server_conn.h"
#include "protocol/md5_auth.h"
#include "protocol/random.h"

namespace pooler::daemon {

namespace {

constexpr int kAcceptsPerEvent = 64;

std::string sockaddr_to_string(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(a->sin6_port));
  }
  return "unix";
}

}  // namespace

struct Daemon::Listener {
  Daemon* daemon = nullptr;
  int fd = -1;
  bool tcp = true;
  std::string label;
  UvHandle<uv_poll_t> poll;
  ~Listener() {
    poll.reset();
    if (fd >= 0) ::close(fd);
  }
};

Daemon::Daemon(config::Config cfg) : config_(std::move(cfg)) {
  uv_loop_init(&loop_);
  prepare_users();
  auth_lookup_ = std::make_unique<AuthLookup>(*this);
}

Daemon::~Daemon() {
  listeners_.clear();
  http_.reset();
  // close() retires the client (erasing it from clients_), so not while iterating clients_.
  std::vector<ClientConn*> all;
  for (auto& [id, c] : clients_) all.push_back(c.get());
  for (ClientConn* c : all) c->close();
  pools_.clear();
  auth_lookup_.reset();
  free_retired();
  check_.reset();
  janitor_.reset();
  signals_.clear();
  retired_pools_.clear();
  // Let libuv run the close callbacks that free the handles, and wait for thread-pool work still under way
  // (a forwarded cancel blocks in PQcancel there): closing the loop under it would crash that thread.
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) spdlog::warn("event=loop_close_busy");
}

UserAuth make_user_auth(const std::string& name, const std::string& password) {
  UserAuth a;
  a.name = name;
  a.password = password;
  if (protocol::is_scram_secret(password)) {
    a.kind = UserAuth::Kind::kScramSecret;
    if (auto s = protocol::parse_scram_secret(password)) a.scram = *s;
  } else if (protocol::is_md5_secret(password)) {
    a.kind = UserAuth::Kind::kMd5Secret;
  } else {
    a.kind = UserAuth::Kind::kPlain;
    // A fresh random salt each time, as PostgreSQL makes one per password change.
    std::string salt(16, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size()));
    a.scram = protocol::make_scram_secret(password, salt);
  }
  return a;
}

void Daemon::prepare_users() {
  users_.clear();
  for (const auto& [name, u] : config_.users) users_.emplace(name, make_user_auth(name, u.password));
}

const UserAuth* Daemon::find_user(std::string_view name) const {
  auto it = users_.find(std::string(name));
  return it == users_.end() ? nullptr : &it->second;
}

ServerConnParams Daemon::server_params(const config::Database& db, const std::string& user) const {
  ServerConnParams p;
  std::string login_user = db.user.value_or(user);
  std::optional<std::string> password = db.password;
  if (!password) {
    const UserAuth* ua = find_user(login_user);
    // Only a plain password can log in to the server through libpq; secrets are for client auth.
    if (ua != nullptr && ua->kind == UserAuth::Kind::kPlain) password = ua->password;
  }
  p.libpq = {{"dbname", db.dbname}, {"user", login_user}};
  if (password) p.libpq.emplace_back("password", *password);
  p.libpq.emplace_back("sslmode", db.sslmode);
  for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"sslrootcert", db.sslrootcert},
                                   {"sslcert", db.sslcert},
                                   {"sslkey", db.sslkey},
                                   {"sslcrl", db.sslcrl}}) {
    if (!value.empty()) p.libpq.emplace_back(key, value);
  }
  p.libpq.emplace_back("fallback_application_name", db.application_name.empty() ? "pooler" : db.application_name);
  // TCP keepalive finds a server that vanished without a FIN (network partition, host crash) even on
  // connections nobody uses; a FIN or RST is seen at once because idle connections are always read.
  int idle_s = std::max(1, static_cast<int>(config_.pooler.health_check_period.count()));
  p.libpq.emplace_back("keepalives", "1");
  p.libpq.emplace_back("keepalives_idle", std::to_string(idle_s));
  p.libpq.emplace_back("keepalives_interval", std::to_string(std::max(1, idle_s / 3)));
  p.libpq.emplace_back("keepalives_count", "3");
  p.connect_timeout = db.connect_timeout;
  p.internal_timeout = db.pre_ping_timeout;
  p.max_message_size = SIZE_MAX;
  if (db.pool_mode == config::PoolMode::kTransaction) {
    p.max_prepared_statements = static_cast<std::size_t>(db.max_prepared_statements);
  }
  p.query_timeout = db.query_timeout;
  return p;
}

pool::HostSet* Daemon::host_set(const config::Database& db) {
  auto& hosts = host_sets_[db.name];
  if (!hosts) {
    std::vector<std::string> labels;
    for (const auto& hp : db.hosts) labels.push_back(fmt::format("{}:{}", hp.host, hp.port));
    hosts = std::make_unique<pool::HostSet>(std::move(labels));
  }
  return hosts.get();
}

std::optional<std::uint64_t> Daemon::lookup_user(const config::Database& db, const std::string& user,
                                                 LookupDone done) {
  const config::AuthQuery aq = config_.auth_query_for(db);
  if (aq.user.empty()) return std::nullopt;
  const config::Database* auth_db = aq.dbname.empty() ? &db : config_.find_database(aq.dbname);
  if (auth_db == nullptr) return std::nullopt;  // the config check makes this impossible
  return auth_lookup_->lookup(*auth_db, server_params(*auth_db, aq.user), aq.query, user, std::move(done));
}

void Daemon::cancel_lookup(std::uint64_t ticket) { auth_lookup_->cancel(ticket); }

PoolRuntime& Daemon::pool_for(const config::Database& db, const std::string& user,
                              std::optional<protocol::LoginCredentials> own_login) {
  auto key = std::make_pair(db.name, user);
  auto it = pools_.find(key);
  if (it != pools_.end() && !it->second->retired() && own_login) it->second->set_own_login(std::move(*own_login));
  if (it != pools_.end()) {
    if (!it->second->retired()) return *it->second;
    // Removed by an earlier reload and added back: a fresh pool; the old one lives on for its clients.
    retired_pools_.push_back(std::move(it->second));
    pools_.erase(it);
  }
  ServerConnParams params = server_params(db, user);
  params.own_login = std::move(own_login);
  auto pool = std::make_unique<PoolRuntime>(*this, db, user, std::move(params), config_.pooler.health_check_period,
                                            host_set(db));
  PoolRuntime* raw = pool.get();
  if (paused_all_) raw->pause();
  pools_.emplace(key, std::move(pool));
  spdlog::info("event=pool_created pool={}/{} mode={} pool_size={} max_overflow={}", db.name, user,
               db.pool_mode == config::PoolMode::kSession ? "session" : "transaction", db.pool_size,
               db.max_overflow);
  return *raw;
}

std::expected<void, std::string> Daemon::reload() {
  notify_reloading("reloading configuration");
  auto result = apply_reload();
  notify_ready(result ? status_line() : fmt::format("reload failed, old config kept: {}", result.error()));
  return result;
}

std::string Daemon::status_line() const {
  return fmt::format("{} clients, {} pools", clients_.size(), pools_.size());
}

std::expected<void, std::string> Daemon::apply_reload() {
  auto next = config::load_file(config_.path);
  if (!next) {
    for (const auto& e : next.error()) spdlog::error("event=reload_failed error={}", log_value(e.to_string()));
    ++reloads_failed_;
    metrics_.process().config_reloads_failure.Increment();
    return std::unexpected(fmt::format("{} error(s) in {}; first: {}", next.error().size(), config_.path,
                                       next.error().front().to_string()));
  }
  // Certificate files are read anew on every reload, even when their paths did not change: that is how a
  // renewed certificate is picked up. Connected clients keep the context their session was made from.
  auto tls = make_client_tls_context(next->pooler.tls);
  if (!tls) {
    spdlog::error("event=reload_failed error={}", log_value(tls.error()));
    ++reloads_failed_;
    metrics_.process().config_reloads_failure.Increment();
    return std::unexpected(tls.error());
  }
  client_tls_ = std::move(*tls);
  config::ConfigDiff d = config::diff(config_, *next);
  const config::Pooler& old_p = config_.pooler;
  config::Pooler& new_p = next->pooler;
  if (new_p.listen_addr != old_p.listen_addr || new_p.listen_port != old_p.listen_port ||
      new_p.unix_socket_dir != old_p.unix_socket_dir || new_p.metrics_listen != old_p.metrics_listen ||
      new_p.so_reuseport != old_p.so_reuseport) {
    spdlog::warn("event=reload_partial reason=\"listen addresses, so_reuseport and metrics_listen change only on "
                 "restart\"");
    new_p.listen_addr = old_p.listen_addr;
    new_p.listen_port = old_p.listen_port;
    new_p.unix_socket_dir = old_p.unix_socket_dir;
    new_p.metrics_listen = old_p.metrics_listen;
    new_p.so_reuseport = old_p.so_reuseport;
  }
  config::Config old = std::move(config_);
  config_ = std::move(*next);
  set_log_level(config_.pooler.log_level);
  if (!d.added_users.empty() || !d.removed_users.empty() || !d.changed_users.empty()) prepare_users();
  // auth_query connections log in with the settings they were opened with: let new ones take the new ones.
  auth_lookup_->close_idle();

  auto contains = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  for (const auto& name : d.changed_databases) {
    const config::Database* was = old.find_database(name);
    const config::Database* now_db = config_.find_database(name);
    if (was != nullptr && now_db != nullptr && was->hosts != now_db->hosts) {
      // Pools still holding the old set (retired ones) keep a valid pointer.
      if (auto it = host_sets_.find(name); it != host_sets_.end()) {
        old_host_sets_.push_back(std::move(it->second));
        host_sets_.erase(it);
      }
    }
  }
  for (auto& [key, pool] : pools_) {
    const auto& [db_name, user] = key;
    if (pool->retired()) continue;
    const config::Database* db = config_.find_database(db_name);
    if (db == nullptr || (find_user(user) == nullptr && !db->user)) {
      spdlog::info("event=pool_retired pool={}/{}", db_name, user);
      pool->retire();
      continue;
    }
    const config::Database* was = old.find_database(db_name);
    bool user_changed = contains(d.changed_users, user) || (db->user && contains(d.changed_users, *db->user));
    if (!contains(d.changed_databases, db_name) && !user_changed && !d.pooler_changed) continue;
    bool identity = user_changed || was == nullptr || was->hosts != db->hosts || was->dbname != db->dbname ||
                    was->user != db->user || was->password != db->password || was->sslmode != db->sslmode ||
                    was->sslrootcert != db->sslrootcert || was->sslcert != db->sslcert ||
                    was->sslkey != db->sslkey || was->sslcrl != db->sslcrl ||
                    was->target_session_attrs != db->target_session_attrs;
    pool->reconfigure(*db, server_params(*db, user), host_set(*db), identity);
  }
  // Clients of retired pools leave between transactions; tell the idle ones now.
  std::vector<ClientConn*> affected;
  for (auto& [id, c] : clients_) {
    if (c->pool() != nullptr && c->pool()->retired()) affected.push_back(c.get());
  }
  for (ClientConn* c : affected) c->on_pool_retired();
  ++reloads_ok_;
  metrics_.process().config_reloads_success.Increment();
  metrics_.process().config_last_reload_timestamp_seconds.Set(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  spdlog::info("event=reloaded config={} databases_added={} databases_removed={} databases_changed={} users_changed={}",
               config_.path, d.added_databases.size(), d.removed_databases.size(), d.changed_databases.size(),
               d.added_users.size() + d.removed_users.size() + d.changed_users.size());
  return {};
}

void Daemon::register_cancel_key(ClientConn* c, std::int32_t& pid, std::int32_t& key) {
  // Our own process ids, not the server's: the client may be served by many server connections.
  do {
    pid = next_cancel_pid_;
    next_cancel_pid_ = next_cancel_pid_ >= 0x3fffffff ? 1 : next_cancel_pid_ + 1;
  } while (by_cancel_pid_.contains(pid));
  std::array<std::uint8_t, sizeof key> bytes{};
  protocol::secure_random(bytes);
  std::memcpy(&key, bytes.data(), sizeof key);
  by_cancel_pid_[pid] = c;
}

void Daemon::handle_cancel(std::int32_t pid, std::int32_t key) {
  auto it = by_cancel_pid_.find(pid);
  if (it == by_cancel_pid_.end() || it->second->cancel_key() != key) {
    spdlog::info("event=cancel_ignored reason=\"unknown key\" pid={}", pid);
    return;
  }
  ClientConn* c = it->second;
  ServerConn* s = c->server();
  if (s == nullptr) {
    spdlog::debug("event=cancel_ignored reason=\"client not linked\" client={}", c->id());
    return;
  }
  spdlog::info("event=cancel_forwarded client={} server_pid={}", c->id(), s->backend_pid());
  s->cancel_running_query();
}

void Daemon::retire(ClientConn* c) {
  if (c->cancel_pid() != 0) {
    auto it = by_cancel_pid_.find(c->cancel_pid());
    if (it != by_cancel_pid_.end() && it->second == c) by_cancel_pid_.erase(it);
  }
  auto it = clients_.find(c->id());
  if (it == clients_.end()) return;
  retired_clients_.push_back(std::move(it->second));
  clients_.erase(it);
  if (check_) uv_check_start(check_.get(), &Daemon::on_check);
}

void Daemon::retire(std::unique_ptr<ServerConn> s) {
  retired_servers_.push_back(std::move(s));
  if (check_) uv_check_start(check_.get(), &Daemon::on_check);
}

void Daemon::on_check(uv_check_t* h) noexcept {
  auto* self = static_cast<Daemon*>(h->data);
  if (self == nullptr) return;
  // Stopped first: freeing and the opens below may retire more, which starts it again for the next turn.
  uv_check_stop(h);
  self->free_retired();
  self->start_deferred_opens();
}

namespace {
// The user a pool's server connections count against: a database's forced user, else the client's.
std::string login_user(const PoolRuntime& rt) { return rt.database().user.value_or(rt.user()); }
}  // namespace

Daemon::SharedLimits Daemon::shared_limits(const PoolRuntime& pool) const {
  const config::Pooler& p = config_.pooler;
  SharedLimits out;
  if (p.max_db_connections == 0 && p.max_user_connections == 0) return out;
  const std::string user = login_user(pool);
  std::size_t db_n = 0;
  std::size_t user_n = 0;
  auto count = [&](const PoolRuntime& rt) {
    const std::size_t n = rt.connections().size();
    if (rt.database().name == pool.database().name) db_n += n;
    if (login_user(rt) == user) user_n += n;
  };
  for (const auto& [key, rt] : pools_) count(*rt);
  for (const auto& rt : retired_pools_) count(*rt);
  out.db_full = p.max_db_connections != 0 && db_n >= static_cast<std::size_t>(p.max_db_connections);
  out.user_full = p.max_user_connections != 0 && user_n >= static_cast<std::size_t>(p.max_user_connections);
  return out;
}

bool Daemon::server_slot_free(const PoolRuntime& pool) const {
  const SharedLimits limits = shared_limits(pool);
  return !limits.db_full && !limits.user_full;
}

bool Daemon::evict_for(const PoolRuntime& pool) {
  // Only clients waiting justify closing someone else's connection. A refill to min_pool_size waits for
  // free room, or two pools with min_pool_size would take each other's connections for ever.
  if (pool.pool().stats().waiting == 0) return false;
  const SharedLimits limits = shared_limits(pool);
  const std::string user = login_user(pool);
  // Closing a connection helps only if it counts against every limit that is full.
  auto helps = [&](const PoolRuntime& rt) {
    return &rt != &pool && (!limits.db_full || rt.database().name == pool.database().name) &&
           (!limits.user_full || login_user(rt) == user);
  };
  PoolRuntime* victim = nullptr;
  std::optional<pool::TimePoint> victim_since;
  auto consider = [&](PoolRuntime& rt) {
    if (!helps(rt)) return;
    const std::optional<pool::TimePoint> since = rt.pool().oldest_idle_since();
    if (since && (!victim_since || *since < *victim_since)) {
      victim = &rt;
      victim_since = since;
    }
  };
  for (const auto& [key, rt] : pools_) consider(*rt);
  for (const auto& rt : retired_pools_) consider(*rt);
  return victim != nullptr && victim->evict_idle(pool.name());
}

void Daemon::defer_open(PoolRuntime* pool, std::uint64_t conn) {
  deferred_opens_.emplace_back(pool, conn);
  kick_deferred_opens();
}

void Daemon::kick_deferred_opens() {
  if (check_) uv_check_start(check_.get(), &Daemon::on_check);
}

void Daemon::cancel_deferred_open(PoolRuntime* pool, std::optional<std::uint64_t> conn) {
  std::erase_if(deferred_opens_, [&](const auto& e) { return e.first == pool && (!conn || e.second == *conn); });
}

void Daemon::start_deferred_opens() {
  // Oldest first; one that still does not fit keeps its place. A started open may defer again (its pool
  // asks server_slot_free anew), which appends behind the ones still waiting.
  std::deque<std::pair<PoolRuntime*, std::uint64_t>> waiting;
  waiting.swap(deferred_opens_);
  while (!waiting.empty()) {
    auto [pool, conn] = waiting.front();
    waiting.pop_front();
    if (server_slot_free(*pool) || (evict_for(*pool) && server_slot_free(*pool))) {
      pool->start_deferred_open(conn);
    } else {
      deferred_opens_.emplace_back(pool, conn);
    }
  }
}

void Daemon::free_retired() {
  // Swap first: destructors may retire more.
  while (!retired_clients_.empty() || !retired_servers_.empty()) {
    auto clients = std::move(retired_clients_);
    auto servers = std::move(retired_servers_);
    retired_clients_.clear();
    retired_servers_.clear();
  }
}

bool Daemon::listen_tcp() {
  const auto& pc = config_.pooler;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(pc.listen_port);
  const char* host = (pc.listen_addr == "*" || pc.listen_addr.empty()) ? nullptr : pc.listen_addr.c_str();
  int rc = getaddrinfo(host, port.c_str(), &hints, &res);
  if (rc != 0) {
    spdlog::critical("event=listen_failed addr={} port={} error={}", pc.listen_addr, pc.listen_port,
                     log_value(gai_strerror(rc)));
    return false;
  }
  bool any = false;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (pc.so_reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      spdlog::critical("event=listen_failed addr={} port={} error=\"SO_REUSEPORT: {}\"", pc.listen_addr,
                       pc.listen_port, std::strerror(errno));
      ::close(fd);
      continue;
    }
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
      spdlog::critical("event=listen_failed addr={} port={} error={}", pc.listen_addr, pc.listen_port,
                       log_value(std::strerror(errno)));
      ::close(fd);
      continue;
    }
    auto l = std::make_unique<Listener>();
    l->daemon = this;
    l->fd = fd;
    l->tcp = true;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    l->label = sockaddr_to_string(ss);
    listeners_.push_back(std::move(l));
    any = true;
  }
  freeaddrinfo(res);
  return any;
}

bool Daemon::listen_unix() {
  const auto& pc = config_.pooler;
  if (pc.unix_socket_dir.empty()) return true;
  unix_socket_path_ = fmt::format("{}/.s.PGSQL.{}", pc.unix_socket_dir, pc.listen_port);
  sockaddr_un addr{};
  if (unix_socket_path_.size() >= sizeof addr.sun_path) {
    spdlog::critical("event=listen_failed path={} error=\"path too long\"", unix_socket_path_);
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, unix_socket_path_.c_str(), unix_socket_path_.size() + 1);
  ::unlink(unix_socket_path_.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1024) != 0) {
    spdlog::critical("event=listen_failed path={} error={}", unix_socket_path_, log_value(std::strerror(errno)));
    if (fd >= 0) ::close(fd);
    return false;
  }
  chmod(unix_socket_path_.c_str(), 0777);
  struct stat st {};
  if (::stat(unix_socket_path_.c_str(), &st) == 0) unix_socket_id_ = {st.st_dev, st.st_ino};
  auto l = std::make_unique<Listener>();
  l->daemon = this;
  l->fd = fd;
  l->tcp = false;
  l->label = unix_socket_path_;
  listeners_.push_back(std::move(l));
  return true;
}

void Daemon::remove_unix_socket() {
  if (unix_socket_path_.empty()) return;
  // Only our own: another pooler started on this port (so_reuseport) has bound a new socket at the path.
  struct stat st {};
  if (::stat(unix_socket_path_.c_str(), &st) == 0 && unix_socket_id_ &&
      *unix_socket_id_ == std::pair<dev_t, ino_t>{st.st_dev, st.st_ino}) {
    ::unlink(unix_socket_path_.c_str());
  }
  unix_socket_path_.clear();
}

void Daemon::accept_ready(Listener& l) {
  for (int i = 0; i < kAcceptsPerEvent; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        spdlog::error("event=accept_failed listener={} error={}", l.label, log_value(std::strerror(errno)));
      }
      return;
    }
    if (shutting_down_) {
      ::close(fd);
      continue;
    }
    if (l.tcp) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
    std::uint64_t id = next_client_id_++;
    metrics_.process().client_connections_accepted.Increment();
    auto c = std::make_unique<ClientConn>(*this, id, l.tcp ? sockaddr_to_string(ss) : "unix");
    ClientConn* raw = c.get();
    clients_.emplace(id, std::move(c));
    if (int rc = raw->start(fd); rc != 0) {
      spdlog::error("event=client_start_failed error={}", log_value(uv_strerror(rc)));
      raw->close();
      continue;
    }
    spdlog::debug("event=client_accepted client={} peer={}", id, raw->peer());
  }
}

void Daemon::on_signal(uv_signal_t* h, int signum) noexcept {
  auto* self = static_cast<Daemon*>(h->data);
  if (self == nullptr) return;
  spdlog::info("event=signal signal={}",
               signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : signum == SIGHUP ? "SIGHUP" : "other");
  if (signum == SIGHUP) {
    (void)self->reload();
    return;
  }
  self->shutdown(signum == SIGINT || self->shutting_down_);
}

void Daemon::on_janitor(uv_timer_t* h) noexcept {
  auto* self = static_cast<Daemon*>(h->data);
  if (self == nullptr) return;
  self->janitor();
}

void Daemon::janitor() {
  // Clients that never finish logging in would otherwise hold a max_client_conn slot forever.
  auto now = std::chrono::steady_clock::now();
  auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(config_.pooler.client_login_timeout);
  std::vector<ClientConn*> expired;
  for (auto& [id, c] : clients_) {
    const ClientConn::State st = c->state();
    if ((st == ClientConn::State::kStartup || st == ClientConn::State::kAuth ||
         st == ClientConn::State::kAuthLookup) &&
        now - c->connected_at() > limit) {
      expired.push_back(c.get());
    }
  }
  for (ClientConn* c : expired) c->fatal("08P01", "client_login_timeout expired before login completed");
  // A client sent a FATAL error that it does not read: its slot is freed anyway.
  constexpr auto kFatalDrainLimit = std::chrono::seconds(5);
  std::vector<ClientConn*> stuck;
  for (auto& [id, c] : clients_) {
    if (c->closing() && now - c->closing_since() > kFatalDrainLimit) stuck.push_back(c.get());
  }
  for (ClientConn* c : stuck) c->close();
  if (shutting_down_ && (clients_.empty() || now >= shutdown_deadline_)) {
    if (!clients_.empty()) spdlog::warn("event=shutdown_timeout clients={}", clients_.size());
    shutdown(true);
  }
}

void Daemon::shutdown(bool fast) {
  if (!shutting_down_) {
    spdlog::info("event=shutdown mode={}", fast ? "fast" : "drain");
    notify_stopping(fast ? "stopping" : "draining clients");
    shutdown_deadline_ = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(config_.pooler.shutdown_timeout);
  }
  if (!shutting_down_ && !fast) {
    // Connections the kernel already queued for us would be reset when the listeners close: take them in
    // and tell them, like every client not logged in yet, that we are going (they can retry at once, and
    // with so_reuseport another pooler on the port is there to take them).
    for (auto& l : listeners_) accept_ready(*l);
  }
  shutting_down_ = true;
  listeners_.clear();
  remove_unix_socket();
  std::vector<ClientConn*> all;
  for (auto& [id, c] : clients_) all.push_back(c.get());
  for (ClientConn* c : all) {
    // Graceful: clients between transactions or not yet logged in go now, the rest after their current
    // transaction (up to shutdown_timeout, see janitor()); fast: everyone now.
    if (fast || !c->logged_in()) {
      c->fatal("57P01", "terminating connection due to administrator command");
    } else {
      c->on_pool_retired();
    }
  }
  if (fast || clients_.empty()) uv_stop(&loop_);
}

int Daemon::run() {
  auto tls = make_client_tls_context(config_.pooler.tls);
  if (!tls) {
    spdlog::critical("event=tls_setup_failed error={}", log_value(tls.error()));
    return 1;
  }
  client_tls_ = std::move(*tls);
  // Handlers first: once the port accepts, a SIGHUP must reload rather than kill the process (the default
  // action) — orchestration and tests signal as soon as the port is open.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    auto h = UvHandle<uv_signal_t>::make();
    uv_signal_init(&loop_, h.get());
    h->data = this;
    uv_signal_start(h.get(), &Daemon::on_signal, sig);
    signals_.push_back(std::move(h));
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (client_tls_) {
    spdlog::info("event=client_tls client_tls_mode={} cert_file={}",
                 config::to_string(config_.pooler.tls.client_tls_mode), log_value(config_.pooler.tls.cert_file));
  }
  if (!listen_tcp()) return 1;
  if (!listen_unix()) return 1;
  for (auto& l : listeners_) {
    l->poll = UvHandle<uv_poll_t>::make();
    uv_poll_init_socket(&loop_, l->poll.get(), l->fd);
    l->poll->data = l.get();
    uv_poll_start(l->poll.get(), UV_READABLE, [](uv_poll_t* h, int status, int) noexcept {
      auto* lis = static_cast<Listener*>(h->data);
      if (lis == nullptr || status < 0) return;
      lis->daemon->accept_ready(*lis);
    });
    spdlog::info("event=listening addr={}", l->label);
  }
  if (!config_.pooler.metrics_listen.empty()) {
    metrics_.set_before_scrape([this] { refresh_metrics(); });
    HttpHandlers handlers;
    handlers.metrics = [this] { return metrics_.serialize(); };
    handlers.ready = [this] { return readiness(); };
    http_ = std::make_unique<HttpServer>(&loop_, std::move(handlers));
    if (auto ok = http_->listen(config_.pooler.metrics_listen); !ok) {
      spdlog::critical("event=listen_failed metrics_listen={} error={}", config_.pooler.metrics_listen,
                       log_value(ok.error()));
      return 1;
    }
    spdlog::info("event=metrics_listening addr={} port={}", config_.pooler.metrics_listen, http_->port());
  }
  // Learn every database's host state now, for /readyz and so the first client finds a known-good host.
  for (const auto& [name, db] : config_.databases) {
    // The forced server login if there is one, else a user that is not only a console admin.
    std::string probe_user = db.user.value_or("");
    for (const auto& [uname, u] : config_.users) {
      if (!probe_user.empty()) break;
      const auto& admins = config_.pooler.admin_users;
      if (std::find(admins.begin(), admins.end(), uname) == admins.end()) probe_user = uname;
    }
    if (probe_user.empty() && !config_.users.empty()) probe_user = config_.users.begin()->first;
    if (probe_user.empty()) continue;
    pool_for(db, probe_user).probe_all();
  }
  check_ = UvHandle<uv_check_t>::make();
  uv_check_init(&loop_, check_.get());
  check_->data = this;
  janitor_ = UvHandle<uv_timer_t>::make();
  uv_timer_init(&loop_, janitor_.get());
  janitor_->data = this;
  uv_timer_start(janitor_.get(), &Daemon::on_janitor, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(janitor_.get()));
  notify_ready(status_line());
  uv_run(&loop_, UV_RUN_DEFAULT);
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace pooler::daemon

namespace pooler::daemon {

namespace {

std::string iso_time(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// "1.2.3.4:5678" / "[::1]:5678" / "unix" → address and port.
std::pair<std::string, int> split_peer(const std::string& peer) {
  auto colon = peer.rfind(':');
  if (colon == std::string::npos) return {peer, 0};
  std::string addr = peer.substr(0, colon);
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
  return {addr, std::atoi(peer.c_str() + colon + 1)};
}

const char* client_state_name(const ClientConn& c) {
  switch (c.state()) {
    case ClientConn::State::kLinked:
    case ClientConn::State::kAdmin:
      return "active";
    case ClientConn::State::kLoginWait:
    case ClientConn::State::kLoginSync:
    case ClientConn::State::kWaitServer:
    case ClientConn::State::kSync:
      return "waiting";
    case ClientConn::State::kReady:
      return "idle";
    case ClientConn::State::kStartup:
    case ClientConn::State::kAuthLookup:
    case ClientConn::State::kAuth:
    case ClientConn::State::kClosed:
      return "login";
  }
  return "login";
}

}  // namespace

void Daemon::refresh_metrics() {
  metrics_.process().client_connections.Set(static_cast<double>(clients_.size()));
  struct Counts {
    int active = 0, waiting = 0, idle = 0;
  };
  std::map<const PoolRuntime*, Counts> counts;
  for (const auto& [id, c] : clients_) {
    if (c->pool() == nullptr) continue;
    std::string_view st = client_state_name(*c);
    Counts& n = counts[c->pool()];
    if (st == "active") ++n.active;
    if (st == "waiting") ++n.waiting;
    if (st == "idle") ++n.idle;
  }
  for (auto& [key, pool] : pools_) {
    pool->refresh_metrics();
    Counts n = counts[pool.get()];
    pool->metrics().clients_active.Set(n.active);
    pool->metrics().clients_waiting.Set(n.waiting);
    pool->metrics().clients_idle.Set(n.idle);
  }
  for (auto& [db, hosts] : host_sets_) {
    for (const auto& h : hosts->hosts()) {
      HostMetrics& hm = metrics_.host(db, h.label);
      hm.up.Set(h.state == pool::HostState::kUp ? 1 : 0);
      hm.consecutive_failures.Set(h.consecutive_failures);
    }
  }
}

std::pair<bool, std::string> Daemon::readiness() const {
  if (shutting_down_) return {false, "shutting down\n"};
  if (listeners_.empty()) return {false, "not listening\n"};
  std::string down;
  for (const auto& [name, db] : config_.databases) {
    auto it = host_sets_.find(name);
    if (it == host_sets_.end() || !it->second->any_confirmed_up()) {
      down += fmt::format("database {}: no backend reached\n", name);
    }
  }
  if (!down.empty()) return {false, down};
  return {true, "ready\n"};
}

std::vector<AdminPool> Daemon::pools() {
  std::vector<AdminPool> out;
  auto now = std::chrono::steady_clock::now();
  for (auto& [key, pool] : pools_) {
    if (pool->retired()) continue;
    pool::Pool::Stats st = pool->pool().stats();
    AdminPool row;
    row.database = key.first;
    row.user = key.second;
    row.pool_mode = pool->mode() == config::PoolMode::kSession ? "session" : "transaction";
    for (const auto& [id, c] : clients_) {
      if (c->pool() != pool.get()) continue;
      std::string_view s = client_state_name(*c);
      if (s == "active") ++row.cl_active;
      if (s == "waiting") ++row.cl_waiting;
      if (s == "idle") ++row.cl_idle;
    }
    row.sv_active = st.active + st.resetting;
    row.sv_idle = st.idle;
    row.sv_tested = st.pinging;
    row.sv_login = st.opening;
    if (st.oldest_waiter_since) row.maxwait_seconds = std::chrono::duration<double>(now - *st.oldest_waiter_since).count();
    row.pool_size = pool->database().pool_size;
    row.max_overflow = pool->database().max_overflow;
    row.overflow_in_use = st.overflow_in_use;
    row.paused = pool->paused();
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<AdminClient> Daemon::clients() {
  std::vector<AdminClient> out;
  for (const auto& [id, c] : clients_) {
    AdminClient row;
    row.id = id;
    row.user = c->user();
    row.database = c->database();
    row.state = client_state_name(*c);
    auto [addr, port] = split_peer(c->peer());
    row.addr = addr;
    row.port = port;
    row.connect_time = iso_time(c->connected_wall());
    row.application_name = c->application_name();
    if (c->server() != nullptr) row.server_id = c->server()->id();
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<AdminServer> Daemon::servers() {
  std::vector<AdminServer> out;
  for (auto& [key, pool] : pools_) {
    for (const auto& [id, s] : pool->connections()) {
      AdminServer row;
      row.id = id;
      row.user = key.second;
      row.database = key.first;
      switch (s->state()) {
        case ServerConn::State::kConnecting: row.state = "login"; break;
        case ServerConn::State::kIdle: row.state = "idle"; break;
        case ServerConn::State::kLinked: row.state = "active"; break;
        case ServerConn::State::kInternal: row.state = "tested"; break;
        case ServerConn::State::kClosed: row.state = "closed"; break;
      }
      auto [addr, port] = split_peer(s->host_label());
      row.addr = addr;
      row.port = port;
      auto age = std::chrono::steady_clock::now() - s->created_at;
      row.connect_time = iso_time(std::chrono::system_clock::now() -
                                  std::chrono::duration_cast<std::chrono::system_clock::duration>(age));
      row.backend_pid = s->backend_pid();
      if (s->client() != nullptr) row.client_id = s->client()->id();
      out.push_back(std::move(row));
    }
  }
  return out;
}

std::vector<AdminStats> Daemon::stats() {
  std::map<std::string, AdminStats> by_db;
  for (const auto& [name, db] : config_.databases) by_db[name].database = name;
  for (auto& [key, pool] : pools_) {
    AdminStats& s = by_db[key.first];
    s.database = key.first;
    const PoolTotals& t = pool->totals();
    s.total_xact_count += t.xacts;
    s.total_query_count += t.queries;
    s.total_received += t.received;
    s.total_sent += t.sent;
    s.total_xact_time_us += t.xact_time_us;
    s.total_wait_time_us += t.wait_time_us;
  }
  std::vector<AdminStats> out;
  for (auto& [name, s] : by_db) out.push_back(std::move(s));
  return out;
}

std::vector<AdminDatabase> Daemon::databases() {
  std::vector<AdminDatabase> out;
  for (const auto& [name, db] : config_.databases) {
    AdminDatabase row;
    row.name = name;
    if (!db.hosts.empty()) {
      row.host = db.hosts.front().host;
      row.port = db.hosts.front().port;
    }
    row.database = db.dbname;
    row.force_user = db.user.value_or("");
    row.pool_mode = db.pool_mode == config::PoolMode::kSession ? "session" : "transaction";
    row.pool_size = db.pool_size;
    row.min_pool_size = db.min_pool_size;
    row.max_overflow = db.max_overflow;
    bool any = false, all_paused = true;
    for (auto& [key, pool] : pools_) {
      if (key.first != name || pool->retired()) continue;
      any = true;
      all_paused = all_paused && pool->paused();
      row.current_connections += pool->pool().stats().total;
    }
    row.paused = any ? all_paused : paused_all_;
    row.disabled = database_disabled(name);
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Daemon::config_values() {
  const config::Pooler& p = config_.pooler;
  std::string admins;
  for (const auto& a : p.admin_users) admins += (admins.empty() ? "" : ",") + a;
  static constexpr const char* kAuth[] = {"trust", "md5", "scram-sha-256"};
  return {
      {"config_file", config_.path},
      {"listen_addr", p.listen_addr},
      {"listen_port", std::to_string(p.listen_port)},
      {"unix_socket_dir", p.unix_socket_dir},
      {"auth_type", kAuth[static_cast<int>(p.auth_type)]},
      {"admin_users", admins},
      {"max_client_conn", std::to_string(p.max_client_conn)},
      {"log_level", p.log_level},
      {"log_format", p.log_format == config::LogFormat::kJson ? "json" : "text"},
      {"metrics_listen", p.metrics_listen},
      {"max_message_size", std::to_string(p.max_message_size)},
      {"client_login_timeout", fmt::format("{}", p.client_login_timeout.count())},
      {"shutdown_timeout", fmt::format("{}", p.shutdown_timeout.count())},
      {"health_check_period", fmt::format("{}", p.health_check_period.count())},
      {"max_db_connections", std::to_string(p.max_db_connections)},
      {"max_user_connections", std::to_string(p.max_user_connections)},
      {"client_tls_mode", std::string(config::to_string(p.tls.client_tls_mode))},
      {"tls_cert_file", p.tls.cert_file},
      {"tls_key_file", p.tls.key_file},
      {"tls_client_tls_ca", p.tls.client_tls_ca},
      {"tls_client_tls_crl", p.tls.client_tls_crl},
      {"tls_min_version", std::string(config::to_string(p.tls.min_version))},
      {"hba_rules", std::to_string(p.hba.size())},
  };
}

std::expected<void, std::string> Daemon::pause(std::optional<std::string> db) {
  if (!db) paused_all_ = true;
  for (auto& [key, pool] : pools_) {
    if (!db || key.first == *db) pool->pause();
  }
  spdlog::info("event=paused database={}", db ? log_value(*db) : "*");
  return {};
}

std::expected<void, std::string> Daemon::resume(std::optional<std::string> db) {
  if (!db) paused_all_ = false;
  for (auto& [key, pool] : pools_) {
    if (!db || key.first == *db) pool->resume();
  }
  spdlog::info("event=resumed database={}", db ? log_value(*db) : "*");
  return {};
}

std::expected<void, std::string> Daemon::kill(const std::string& db) {
  for (auto& [key, pool] : pools_) {
    if (key.first == db) pool->kill();
  }
  spdlog::info("event=killed database={}", log_value(db));
  return {};
}

std::expected<void, std::string> Daemon::reconnect(std::optional<std::string> db) {
  for (auto& [key, pool] : pools_) {
    if (!db || key.first == *db) pool->reconnect();
  }
  spdlog::info("event=reconnect database={}", db ? log_value(*db) : "*");
  return {};
}

std::expected<void, std::string> Daemon::disable(const std::string& db) {
  disabled_.insert(db);
  spdlog::info("event=disabled database={}", log_value(db));
  return {};
}

std::expected<void, std::string> Daemon::enable(const std::string& db) {
  disabled_.erase(db);
  spdlog::info("event=enabled database={}", log_value(db));
  return {};
}

std::expected<void, std::string> Daemon::shutdown() {
  shutdown(true);
  return {};
}

}  // namespace pooler::daemon
