// auth_query: looks up the stored password secret of a user missing from [users] by running the configured
// query on the server, as the configured auth_user, through a few dedicated server connections per
// (database, auth_user). Lookups queue when those are busy; nothing is cached, so a password changed on the
// server applies to the next login.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "daemon/server_conn.h"

namespace pooler::daemon {

class Daemon;

struct LookupResult {
  enum class Kind { kFound, kNotFound, kFailed };
  Kind kind = Kind::kFailed;
  std::string secret;  // kFound: the second column (a SCRAM or md5 secret, or a plain password)
  std::string error;   // kFailed: why, for the log and the client
};
using LookupDone = std::function<void(const LookupResult&)>;

// The Parse/Bind/Execute/Sync that runs `query` with `user` as $1 (text), unnamed statement and portal.
std::string auth_query_messages(std::string_view query, std::string_view user);
// What a finished auth_query run means: its first row's second column is the secret; no row (or a NULL
// secret) is an unknown user.
LookupResult interpret_auth_query(const InternalResult& r);

class AuthLookup final : public ServerConnOwner {
 public:
  // Connections each (auth database, auth user) may have open at once.
  static constexpr std::size_t kMaxConnections = 4;

  explicit AuthLookup(Daemon& daemon) : daemon_(daemon) {}
  AuthLookup(const AuthLookup&) = delete;
  AuthLookup& operator=(const AuthLookup&) = delete;
  ~AuthLookup();

  // Looks `user` up in `db` (hosts tried in order) with `params` (libpq settings for auth_user). `done` runs
  // once, usually later on the loop, but from inside lookup() when the lookup fails at once (no host can be
  // tried). Returns a ticket for cancel().
  std::uint64_t lookup(const config::Database& db, ServerConnParams params, const std::string& query,
                       const std::string& user, LookupDone done);
  // The client went away: its `done` will not run.
  void cancel(std::uint64_t ticket);
  // After a reload: idle connections close, so the next lookups log in with the new settings.
  void close_idle();

  // ServerConnOwner
  void on_server_connected(ServerConn* s) override;
  void on_server_connect_failed(ServerConn* s, std::string error) override;
  void on_server_lost(ServerConn* s, std::string reason) override;

 private:
  struct Request {
    std::uint64_t ticket = 0;
    std::string query;
    std::string user;
  };
  struct Channel {
    config::Database db;
    ServerConnParams params;
    std::deque<Request> waiting;
    std::map<ServerConn*, std::unique_ptr<ServerConn>> conns;
    std::map<ServerConn*, std::size_t> host_of;  // which host a connecting connection went to
    std::string last_error;
  };

  void pump(Channel& ch);
  void open(Channel& ch, std::size_t host);
  void run(Channel& ch, ServerConn* s, Request req);
  void drop(Channel& ch, ServerConn* s);
  Channel* channel_of(ServerConn* s);
  void finish(std::uint64_t ticket, const LookupResult& result);
  void count(LookupResult::Kind kind);  // pooler_auth_query_lookups_total

  Daemon& daemon_;
  std::map<std::pair<std::string, std::string>, Channel> channels_;  // (database name, auth user)
  std::uint64_t next_ticket_ = 1;
  std::uint64_t next_conn_id_ = 1ULL << 61;
  std::map<std::uint64_t, LookupDone> pending_;  // by ticket; cancel() erases
};

}  // namespace pooler::daemon
