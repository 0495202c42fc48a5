// The daemon's configuration as typed, validated structs, and the entry points that load it from TOML.
// Defaults live here, in the member initialisers, and nowhere else.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.h"

namespace pooler::config {

// Durations are seconds in TOML, fractions allowed, so they are kept as double seconds.
using Seconds = std::chrono::duration<double>;

enum class AuthType { kTrust, kMd5, kScramSha256 };                  // "trust" | "md5" | "scram-sha-256"
enum class PoolMode { kSession, kTransaction };                      // "session" | "transaction"
enum class LogFormat { kText, kJson };                               // "text" | "json"
enum class ResetOnReturn { kRollback, kDiscard, kNone };             // "rollback" | "discard" | "none"
// libpq's target_session_attrs, spelled as libpq spells them: "any", "read-write", "read-only", "primary",
// "standby", "prefer-standby".
enum class TargetSessionAttrs { kAny, kReadWrite, kReadOnly, kPrimary, kStandby, kPreferStandby };

struct HostPort {
  std::string host;
  std::uint16_t port = 5432;

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// One [databases.NAME] table: a name clients connect to and the pool behind it.
struct Database {
  std::string name;                          // the [databases.NAME] key: what clients put in dbname
  std::vector<HostPort> hosts;               // from host + port, or hosts = ["h1:5432", "h2"]
  std::string dbname;                        // server-side name; default = name
  std::optional<std::string> user;           // force the server login user
  std::optional<std::string> password;       // and its password
  PoolMode pool_mode = PoolMode::kSession;
  int pool_size = 5;                         // >= 0
  int max_overflow = 10;                     // >= -1 (-1 = unlimited)
  Seconds pool_timeout{30.0};                // > 0
  std::optional<Seconds> pool_recycle;       // -1 (default) = never; else > 0
  bool pool_pre_ping = true;
  Seconds pre_ping_after{1.0};               // >= 0
  Seconds pre_ping_timeout{5.0};             // > 0
  int min_pool_size = 0;                     // 0..pool_size
  std::optional<Seconds> idle_timeout = Seconds{600.0};   // -1 = never
  Seconds connect_timeout{5.0};              // > 0
  std::optional<Seconds> query_timeout;      // -1/absent = none
  std::optional<Seconds> idle_transaction_timeout;        // -1/absent = none
  std::optional<ResetOnReturn> reset_on_return;           // absent: see effective_reset()
  bool use_lifo = false;
  int max_prepared_statements = 0;           // >= 0
  TargetSessionAttrs target_session_attrs = TargetSessionAttrs::kAny;
  std::string sslmode = "prefer";            // libpq sslmode spelling
  std::string application_name;              // server-side application_name fallback, "" = none

  // A session-mode client may have changed any session state, so DISCARD ALL; in transaction mode the
  // session state is shared by design and only an open transaction must not leak, so ROLLBACK.
  [[nodiscard]] ResetOnReturn effective_reset() const;

  friend bool operator==(const Database&, const Database&) = default;
};

// One [users.NAME] table. password is plain text, or a secret as PostgreSQL stores it in pg_authid:
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" or "md5" followed by 32 hex digits.
struct User {
  std::string name;
  std::string password;

  friend bool operator==(const User&, const User&) = default;
};

// The [pooler] table: process-wide settings.
struct Pooler {
  std::string listen_addr = "127.0.0.1";
  std::uint16_t listen_port = 6432;          // 0 lets the kernel pick (for tests)
  std::string unix_socket_dir;               // "" = no unix socket; else .s.PGSQL.<port> is created there
  AuthType auth_type = AuthType::kScramSha256;
  std::vector<std::string> admin_users;      // each must be a [users] entry
  int max_client_conn = 1000;                // >= 1
  std::string log_level = "info";            // trace|debug|info|warn|error|critical|off
  LogFormat log_format = LogFormat::kText;
  std::string metrics_listen;                // "host:port", or "" = disabled
  std::size_t max_message_size = 1024 * 1024 * 1024;      // bytes; larger client messages close the client
  Seconds client_login_timeout{60.0};        // > 0
  Seconds shutdown_timeout{30.0};            // >= 0
  Seconds health_check_period{30.0};         // > 0

  friend bool operator==(const Pooler&, const Pooler&) = default;
};

struct Config {
  std::string path;                          // the file it came from
  Pooler pooler;
  std::map<std::string, Database, std::less<>> databases;
  std::map<std::string, User, std::less<>> users;

  // nullptr when there is no such entry.
  [[nodiscard]] const Database* find_database(std::string_view name) const;
  [[nodiscard]] const User* find_user(std::string_view name) const;

  friend bool operator==(const Config&, const Config&) = default;
};

// Reads and validates a config file. On failure returns ALL problems found, in file order, not just the first.
[[nodiscard]] std::expected<Config, std::vector<ConfigError>> load_file(const std::string& path);

// As load_file, for text already in memory; source_name is what errors and Config::path call the file.
[[nodiscard]] std::expected<Config, std::vector<ConfigError>> load_string(std::string_view toml_text,
                                                                         const std::string& source_name);

}  // namespace pooler::config
