// The daemon's configuration as typed, validated structs, and the entry points that load it from TOML.
// Defaults live here, in the member initialisers, and nowhere else.
#pragma once

#include <array>
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

inline constexpr std::string_view kDefaultAuthQuery = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";

// Durations are seconds in TOML, fractions allowed, so they are kept as double seconds.
using Seconds = std::chrono::duration<double>;

enum class AuthType { kTrust, kMd5, kScramSha256 };                  // "trust" | "md5" | "scram-sha-256"
enum class PoolMode { kSession, kTransaction };                      // "session" | "transaction"
enum class LogFormat { kText, kJson };                               // "text" | "json"
enum class ResetOnReturn { kRollback, kDiscard, kNone };             // "rollback" | "discard" | "none"
// How clients may or must use TLS. verify-ca also requires a client certificate signed by client_tls_ca;
// verify-full, in addition, its CN equal to the user name (PgBouncer's client_tls_sslmode spellings).
enum class ClientTlsMode { kDisable, kAllow, kRequire, kVerifyCa, kVerifyFull };
enum class TlsVersion { kTls12, kTls13 };                            // "TLSv1.2" | "TLSv1.3"
// pg_hba.conf connection types and methods, spelled as PostgreSQL spells them.
enum class HbaType { kLocal, kHost, kHostSsl, kHostNoSsl };          // "local" | "host" | "hostssl" | "hostnossl"
enum class HbaMethod { kTrust, kReject, kMd5, kScramSha256, kCert }; // "trust" | "reject" | "md5" | ...
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
  // Passed to libpq as they are ("" = not passed): the CA to verify the server with, the client certificate
  // and key the pooler presents, and a certificate revocation list.
  std::string sslrootcert;
  std::string sslcert;
  std::string sslkey;
  std::string sslcrl;
  std::string application_name;              // server-side application_name fallback, "" = none
  // auth_query for this database (absent: [pooler]'s): users not in [users] are looked up on the server.
  std::optional<std::string> auth_user;      // "" turns it off for this database
  std::optional<std::string> auth_query;
  std::optional<std::string> auth_dbname;

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

// [pooler.tls]: TLS towards clients. Without cert_file and key_file clients are answered 'N' (no TLS).
struct Tls {
  std::string cert_file;                     // PEM certificate (chain) presented to clients
  std::string key_file;                      // its PEM private key
  std::string client_tls_ca;                 // PEM CA bundle for client certificates; "" = none asked for
  std::string client_tls_crl;                // PEM revocation list(s) for client certificates; "" = none
  std::string ciphers;                       // OpenSSL cipher list for TLS 1.2; "" = the pooler's default
  TlsVersion min_version = TlsVersion::kTls12;
  // Default: kAllow when cert_file is set, else kDisable.
  ClientTlsMode client_tls_mode = ClientTlsMode::kDisable;

  [[nodiscard]] bool enabled() const { return client_tls_mode != ClientTlsMode::kDisable; }

  friend bool operator==(const Tls&, const Tls&) = default;
};

// An IPv4 or IPv6 network as in a pg_hba.conf address: the family's address bytes and a prefix length.
struct IpNet {
  int family = 4;                            // 4 or 6
  std::array<std::uint8_t, 16> bytes{};      // IPv4 uses the first 4
  int prefix = 32;

  friend bool operator==(const IpNet&, const IpNet&) = default;
};

// What a host rule's address column says: any address, a CIDR, or PostgreSQL's two keywords.
enum class HbaAddress {
  kAll,       // "all" (and always for local rules)
  kCidr,      // HbaRule::address
  kSameHost,  // "samehost": any of the pooler host's own addresses
  kSameNet,   // "samenet": any address in a subnet the pooler host is directly connected to
};

// One [[pooler.hba]] entry, as one line of pg_hba.conf.
struct HbaRule {
  HbaType type = HbaType::kHost;
  std::vector<std::string> databases;        // names, "all" or "sameuser"
  std::vector<std::string> users;            // names or "all"
  HbaAddress address_kind = HbaAddress::kAll;
  std::optional<IpNet> address;              // set when address_kind is kCidr
  HbaMethod method = HbaMethod::kScramSha256;
  int line = 0;                              // where it is in the file, for logs

  friend bool operator==(const HbaRule&, const HbaRule&) = default;
};

// The [pooler] table: process-wide settings.
struct Pooler {
  std::string listen_addr = "127.0.0.1";
  std::uint16_t listen_port = 6432;          // 0 lets the kernel pick (for tests)
  std::string unix_socket_dir;               // "" = no unix socket; else .s.PGSQL.<port> is created there
  // SO_REUSEPORT on the TCP listeners: several pooler processes may listen on one port (the kernel spreads
  // new connections), for restarts and upgrades without a moment of refused connections.
  bool so_reuseport = false;
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
  // Server connections open at once (connecting included) across all pools of one database, and across
  // all pools that log in to the server as one user; 0 = no limit. See Daemon::server_slot_free.
  int max_db_connections = 0;
  int max_user_connections = 0;
  Tls tls;
  // Checked first match wins; empty = no rules, auth_type applies to everyone.
  std::vector<HbaRule> hba;
  // auth_query: a user missing from [users] is looked up on the server by auth_user (a [users] entry with a
  // plain password) running auth_query with the name as $1, in the pooler database auth_dbname ("" = the
  // one the client asked for). The row's second column is the stored secret to authenticate against.
  std::string auth_user;                     // "" = off
  std::string auth_query = std::string(kDefaultAuthQuery);
  std::string auth_dbname;

  friend bool operator==(const Pooler&, const Pooler&) = default;
};

// The auth_query settings that apply to one database: its own where set, else [pooler]'s.
struct AuthQuery {
  std::string user;     // "" = users not in [users] do not exist
  std::string query;
  std::string dbname;   // a [databases] name

  friend bool operator==(const AuthQuery&, const AuthQuery&) = default;
};

struct Config {
  std::string path;                          // the file it came from
  Pooler pooler;
  std::map<std::string, Database, std::less<>> databases;
  std::map<std::string, User, std::less<>> users;

  // nullptr when there is no such entry.
  [[nodiscard]] const Database* find_database(std::string_view name) const;
  [[nodiscard]] const User* find_user(std::string_view name) const;
  // For clients of `db` (a database name of ours) whose user is not in [users].
  [[nodiscard]] AuthQuery auth_query_for(const Database& db) const;

  friend bool operator==(const Config&, const Config&) = default;
};

// Reads and validates a config file. On failure returns ALL problems found, in file order, not just the first.
[[nodiscard]] std::expected<Config, std::vector<ConfigError>> load_file(const std::string& path);

// As load_file, for text already in memory; source_name is what errors and Config::path call the file.
[[nodiscard]] std::expected<Config, std::vector<ConfigError>> load_string(std::string_view toml_text,
                                                                         const std::string& source_name);

}  // namespace pooler::config
