// AuthLookup: auth_query over a handful of dedicated server connections per (database, auth_user).
#include "daemon/auth_lookup.h"

#include <spdlog/spdlog.h>

#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "protocol/writer.h"

namespace pooler::daemon {

std::string auth_query_messages(std::string_view query, std::string_view user) {
  // The name goes as a bound parameter, never into the SQL text: any byte is safe in it.
  std::string out;
  std::size_t m = protocol::begin_message(out, 'P');
  protocol::append_cstring(out, "");
  protocol::append_cstring(out, query);
  protocol::append_int16(out, 0);  // parameter types: all inferred
  protocol::finish_message(out, m);
  m = protocol::begin_message(out, 'B');
  protocol::append_cstring(out, "");
  protocol::append_cstring(out, "");
  protocol::append_int16(out, 0);  // parameter formats: all text
  protocol::append_int16(out, 1);
  protocol::append_int32(out, static_cast<std::int32_t>(user.size()));
  out.append(user);
  protocol::append_int16(out, 0);  // result formats: all text
  protocol::finish_message(out, m);
  m = protocol::begin_message(out, 'E');
  protocol::append_cstring(out, "");
  protocol::append_int32(out, 0);
  protocol::finish_message(out, m);
  protocol::write_sync(out);
  return out;
}

LookupResult interpret_auth_query(const InternalResult& r) {
  LookupResult out;
  if (!r.ok) {
    out.error = r.sqlstate.empty() ? r.message : fmt::format("{} {}", r.sqlstate, r.message);
    return out;
  }
  if (r.rows == 0) {
    out.kind = LookupResult::Kind::kNotFound;
    return out;
  }
  if (r.rows > 1) {
    out.error = fmt::format("auth_query returned {} rows; it must return at most one", r.rows);
    return out;
  }
  if (r.row.size() < 2) {
    out.error = "auth_query must return two columns: the user name and its password secret";
    return out;
  }
  // A role without a password (NULL) cannot log in with one, as PostgreSQL says of such roles.
  if (!r.row[1] || r.row[1]->empty()) {
    out.kind = LookupResult::Kind::kNotFound;
    return out;
  }
  out.kind = LookupResult::Kind::kFound;
  out.secret = *r.row[1];
  return out;
}

AuthLookup::~AuthLookup() {
  for (auto& [key, ch] : channels_) {
    for (auto& [raw, conn] : ch.conns) conn->close();
  }
}

std::uint64_t AuthLookup::lookup(const config::Database& db, ServerConnParams params, const std::string& query,
                                 const std::string& user, LookupDone done) {
  const std::uint64_t ticket = next_ticket_++;
  pending_.emplace(ticket, std::move(done));
  std::string auth_user;
  for (const auto& [k, v] : params.libpq) {
    if (k == "user") auth_user = v;
  }
  Channel& ch = channels_[{db.name, auth_user}];
  ch.db = db;
  ch.params = std::move(params);
  ch.waiting.push_back(Request{ticket, query, user});
  pump(ch);
  return ticket;
}

void AuthLookup::cancel(std::uint64_t ticket) { pending_.erase(ticket); }

void AuthLookup::close_idle() {
  for (auto& [key, ch] : channels_) {
    std::vector<ServerConn*> idle;
    for (auto& [raw, conn] : ch.conns) {
      if (raw->state() == ServerConn::State::kIdle) idle.push_back(raw);
    }
    for (ServerConn* s : idle) drop(ch, s);
  }
}

void AuthLookup::finish(std::uint64_t ticket, const LookupResult& result) {
  auto it = pending_.find(ticket);
  if (it == pending_.end()) return;
  LookupDone done = std::move(it->second);
  pending_.erase(it);
  if (done) done(result);
}

void AuthLookup::count(LookupResult::Kind kind) {
  ProcessMetrics& m = daemon_.metrics().process();
  switch (kind) {
    case LookupResult::Kind::kFound: m.auth_query_found.Increment(); break;
    case LookupResult::Kind::kNotFound: m.auth_query_not_found.Increment(); break;
    case LookupResult::Kind::kFailed: m.auth_query_failed.Increment(); break;
  }
}

AuthLookup::Channel* AuthLookup::channel_of(ServerConn* s) {
  for (auto& [key, ch] : channels_) {
    if (ch.conns.contains(s)) return &ch;
  }
  return nullptr;
}

void AuthLookup::pump(Channel& ch) {
  // Cancelled requests need no connection.
  while (!ch.waiting.empty() && !pending_.contains(ch.waiting.front().ticket)) ch.waiting.pop_front();
  if (ch.waiting.empty()) return;
  // A snapshot: running a request can fail at once and drop that connection (or, through the callbacks,
  // pump again), which would invalidate an iteration over ch.conns.
  std::vector<ServerConn*> conns;
  for (auto& [raw, conn] : ch.conns) conns.push_back(raw);
  std::size_t connecting = 0;
  for (ServerConn* raw : conns) {
    if (ch.waiting.empty()) return;
    if (!ch.conns.contains(raw)) continue;
    if (raw->state() == ServerConn::State::kConnecting) ++connecting;
    if (raw->state() != ServerConn::State::kIdle || !raw->is_clean()) continue;
    Request req = std::move(ch.waiting.front());
    ch.waiting.pop_front();
    run(ch, raw, std::move(req));
  }
  // One new connection per queued request not already covered by one under way, up to the limit.
  while (ch.waiting.size() > connecting && ch.conns.size() < kMaxConnections) {
    ++connecting;
    open(ch, 0);
  }
}

void AuthLookup::open(Channel& ch, std::size_t host) {
  auto conn = std::make_unique<ServerConn>(daemon_.loop(), this, next_conn_id_++);
  ServerConn* raw = conn.get();
  ch.conns.emplace(raw, std::move(conn));
  ch.host_of[raw] = host;
  ServerConnParams p = ch.params;
  const config::HostPort& hp = ch.db.hosts.at(host);
  p.libpq.emplace_back("host", hp.host);
  p.libpq.emplace_back("port", std::to_string(hp.port));
  spdlog::debug("event=auth_query_connecting database={} host={}:{}", ch.db.name, hp.host, hp.port);
  raw->connect(p);
}

void AuthLookup::run(Channel& ch, ServerConn* s, Request req) {
  // Channels are never erased (std::map nodes stay put), so the callback may hold on to this one.
  Channel* channel = &ch;
  const std::uint64_t ticket = req.ticket;
  const std::string user = req.user;
  s->drain_internal(auth_query_messages(req.query, req.user), 1,
                    [this, channel, ticket, user](ServerConn*, const InternalResult& r) {
                      LookupResult result = interpret_auth_query(r);
                      count(result.kind);
                      spdlog::debug("event=auth_query database={} user={} result={}", channel->db.name,
                                    log_value(user),
                                    result.kind == LookupResult::Kind::kFound      ? "found"
                                    : result.kind == LookupResult::Kind::kNotFound ? "not_found"
                                                                                   : "failed");
                      finish(ticket, result);
                      // The connection is free again (or gone): serve whoever waits next.
                      pump(*channel);
                    });
}

void AuthLookup::drop(Channel& ch, ServerConn* s) {
  auto it = ch.conns.find(s);
  if (it == ch.conns.end()) return;
  std::unique_ptr<ServerConn> conn = std::move(it->second);
  ch.conns.erase(it);
  ch.host_of.erase(s);
  conn->close();
  // It may be on the call stack (a callback from inside it): freed after this loop iteration.
  daemon_.retire(std::move(conn));
}

void AuthLookup::on_server_connected(ServerConn* s) {
  if (Channel* ch = channel_of(s)) {
    ch->host_of.erase(s);
    pump(*ch);
  }
}

void AuthLookup::on_server_connect_failed(ServerConn* s, std::string error) {
  Channel* ch = channel_of(s);
  if (ch == nullptr) return;
  const std::size_t host = ch->host_of.contains(s) ? ch->host_of[s] : 0;
  drop(*ch, s);
  spdlog::warn("event=auth_query_connect_failed database={} error={}", ch->db.name, log_value(error));
  if (host + 1 < ch->db.hosts.size()) {
    open(*ch, host + 1);
    return;
  }
  // Every host failed: whoever waits can be told now rather than at their login timeout, unless another
  // connection is still on its way.
  for (auto& [raw, conn] : ch->conns) {
    if (raw->state() == ServerConn::State::kConnecting) return;
  }
  std::deque<Request> waiting;
  waiting.swap(ch->waiting);
  for (const Request& r : waiting) {
    count(LookupResult::Kind::kFailed);
    finish(r.ticket, LookupResult{LookupResult::Kind::kFailed, {}, error});
  }
}

void AuthLookup::on_server_lost(ServerConn* s, std::string reason) {
  Channel* ch = channel_of(s);
  if (ch == nullptr) return;
  spdlog::info("event=auth_query_connection_lost database={} reason={}", ch->db.name, log_value(reason));
  drop(*ch, s);
  pump(*ch);
}

}  // namespace pooler::daemon
