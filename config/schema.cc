// Reading and validating [pooler], [databases.NAME] and [users.NAME]. Defaults come from the structs in
// config.h: a key that is absent (or wrong) leaves its member initialiser in place.
#include "config/schema.h"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "config/hba.h"
#include "config/host_port.h"
#include "config/password_kind.h"

namespace pooler::config {

namespace {

constexpr std::array<std::string_view, 7> kLogLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};
constexpr std::array<std::string_view, 6> kSslModes{"disable", "allow", "prefer", "require", "verify-ca",
                                                    "verify-full"};
// The virtual database of the admin console (SHOW POOLS, RELOAD, ...).
constexpr std::string_view kAdminDatabase = "pooler";
// sizeof(sockaddr_un::sun_path) on Linux, less the terminating NUL.
constexpr std::size_t kMaxUnixSocketPath = 107;
// The protocol's length field is an Int32 that counts itself.
constexpr std::int64_t kMaxProtocolMessage = 2147483647;

struct AdminUserRef {
  std::string name;
  SourcePos pos;
  std::string key;
};

// Names that must be checked against [users] / [databases] once every table has been read.
struct NameRefs {
  std::vector<AdminUserRef> admins;
  std::vector<AdminUserRef> auth_users;
  std::vector<AdminUserRef> auth_dbnames;
};

// auth_user / auth_query / auth_dbname, in [pooler] (required values) or a database (optional overrides).
void read_auth_query(TableReader& r, std::string& user, std::string& query, std::string& dbname, NameRefs& refs) {
  if (r.string("auth_user", user, true) && !user.empty()) {
    refs.auth_users.push_back({user, r.position_of("auth_user"), r.key_path("auth_user")});
  }
  if (r.string("auth_query", query, false) && query.find("$1") == std::string::npos) {
    r.error("auth_query", "must use $1 for the user name, e.g. \"SELECT usename, passwd FROM pg_shadow WHERE "
                          "usename = $1\"");
  }
  if (r.string("auth_dbname", dbname, true) && !dbname.empty()) {
    refs.auth_dbnames.push_back({dbname, r.position_of("auth_dbname"), r.key_path("auth_dbname")});
  }
}

void read_auth_query(TableReader& r, Database& db, NameRefs& refs) {
  std::string user, query, dbname;
  const bool has_user = r.take("auth_user") != nullptr;
  const bool has_query = r.take("auth_query") != nullptr;
  const bool has_dbname = r.take("auth_dbname") != nullptr;
  read_auth_query(r, user, query, dbname, refs);
  if (has_user) db.auth_user = user;
  if (has_query) db.auth_query = query;
  if (has_dbname) db.auth_dbname = dbname;
}

// A table's own position; implicit tables (made by dotted keys) have none, so use the key that made them.
SourcePos table_pos(const toml::table& table, const toml::key& key) {
  const SourcePos pos = to_pos(table.source());
  return pos.line > 0 ? pos : to_pos(key.source());
}

void read_tls(TableReader& r, Tls& tls) {
  r.string("cert_file", tls.cert_file, false);
  r.string("key_file", tls.key_file, false);
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    r.error(tls.cert_file.empty() ? "key_file" : "cert_file",
            "cert_file and key_file go together: give both, or neither to turn client TLS off");
  }
  r.string("client_tls_ca", tls.client_tls_ca, false);
  if (r.string("client_tls_crl", tls.client_tls_crl, false) && !tls.client_tls_crl.empty() &&
      tls.client_tls_ca.empty()) {
    r.error("client_tls_crl", "needs client_tls_ca: without it no client certificate is asked for or checked");
  }
  r.string("ciphers", tls.ciphers, false);
  r.choice("min_version", tls.min_version);
  const bool have_cert = !tls.cert_file.empty() && !tls.key_file.empty();
  tls.client_tls_mode = have_cert ? ClientTlsMode::kAllow : ClientTlsMode::kDisable;
  if (r.choice("client_tls_mode", tls.client_tls_mode) && tls.enabled() && !have_cert) {
    r.error("client_tls_mode", fmt::format("\"{}\" needs cert_file and key_file", to_string(tls.client_tls_mode)));
    tls.client_tls_mode = ClientTlsMode::kDisable;
  }
  if ((tls.client_tls_mode == ClientTlsMode::kVerifyCa || tls.client_tls_mode == ClientTlsMode::kVerifyFull) &&
      tls.client_tls_ca.empty()) {
    r.error("client_tls_mode", fmt::format("\"{}\" needs client_tls_ca, the CA that signs client certificates",
                                           to_string(tls.client_tls_mode)));
  }
  r.report_unknown_keys();
}

// A string or an array of strings ("all", a name, or ["a", "b"]); false (reported) when absent or wrong.
bool read_name_list(TableReader& r, std::string_view key, std::vector<std::string>& out) {
  const toml::node* node = r.take(key);
  if (node == nullptr) {
    r.error(key, R"(missing; give a name, a list of names, or "all")");
    return false;
  }
  if (const auto* one = node->as_string()) {
    out.push_back(one->get());
  } else if (const auto* list = node->as_array()) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto* name = list->get(i)->as_string();
      if (name == nullptr) {
        r.errors().add(to_pos(list->get(i)->source()), fmt::format("{}[{}]", r.key_path(key), i),
                       fmt::format("expected a string, got {}", describe(list->get(i)->type())));
        return false;
      }
      out.push_back(name->get());
    }
  } else {
    r.type_error(key, *node, "a string or an array of strings");
    return false;
  }
  if (out.empty() || std::any_of(out.begin(), out.end(), [](const std::string& n) { return n.empty(); })) {
    r.error(key, "names must not be empty");
    return false;
  }
  return true;
}

template <typename E>
bool required_choice(TableReader& r, std::string_view key, E& out) {
  if (r.take(key) == nullptr) {
    r.error(key, fmt::format("missing; expected one of {}", quoted_choices<E>()));
    return false;
  }
  return r.choice(key, out);
}

HbaRule read_hba_rule(TableReader& r, const Tls& tls) {
  HbaRule rule;
  rule.line = r.position().line;
  const bool have_type = required_choice(r, "type", rule.type);
  read_name_list(r, "database", rule.databases);
  read_name_list(r, "user", rule.users);
  const bool have_method = required_choice(r, "method", rule.method);
  std::string address;
  const bool have_address = r.string("address", address, false);
  if (have_type && rule.type == HbaType::kLocal) {
    if (have_address) r.error("address", "a local rule matches unix-socket clients, which have no address");
  } else if (have_type) {
    if (!have_address && r.take("address") == nullptr) {
      r.error("address", R"(missing; a host rule needs "all" or a CIDR such as "10.0.0.0/8")");
    } else if (address == "samehost") {
      rule.address_kind = HbaAddress::kSameHost;
    } else if (address == "samenet") {
      rule.address_kind = HbaAddress::kSameNet;
    } else if (have_address && address != "all") {
      if (auto net = parse_cidr(address)) {
        rule.address_kind = HbaAddress::kCidr;
        rule.address = *net;
      } else {
        r.error("address", net.error());
      }
    }
    if (rule.type == HbaType::kHostSsl && !tls.enabled()) {
      r.error("type", "a hostssl rule cannot match: client TLS is off (no [pooler.tls] cert_file/key_file)");
    }
  }
  if (have_type && have_method && rule.method == HbaMethod::kCert) {
    if (rule.type != HbaType::kHostSsl) {
      r.error("method", "cert authentication is only supported on hostssl rules");
    } else if (tls.client_tls_ca.empty()) {
      r.error("method", "cert authentication needs [pooler.tls] client_tls_ca to verify client certificates");
    }
  }
  r.report_unknown_keys();
  return rule;
}

void read_pooler(TableReader& r, Pooler& p, NameRefs& refs) {
  r.string("listen_addr", p.listen_addr, false);
  r.integer("listen_port", p.listen_port, 0, 65535);
  r.boolean("so_reuseport", p.so_reuseport);
  if (r.string("unix_socket_dir", p.unix_socket_dir, true) && !p.unix_socket_dir.empty()) {
    const std::string socket = fmt::format("{}/.s.PGSQL.{}", p.unix_socket_dir, p.listen_port);
    if (socket.size() > kMaxUnixSocketPath) {
      r.error("unix_socket_dir", fmt::format("socket path \"{}\" would be {} bytes, more than the {} a unix "
                                             "socket path may have",
                                             socket, socket.size(), kMaxUnixSocketPath));
    }
  }
  r.choice("auth_type", p.auth_type);

  std::vector<AdminUserRef>& admins = refs.admins;
  if (const toml::array* list = r.array("admin_users")) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const toml::node& item = *list->get(i);
      const std::string key = fmt::format("{}[{}]", r.key_path("admin_users"), i);
      const auto* name = item.as_string();
      if (name == nullptr) {
        r.errors().add(to_pos(item.source()), key, fmt::format("expected a string, got {}", describe(item.type())));
        continue;
      }
      p.admin_users.push_back(name->get());
      admins.push_back({name->get(), to_pos(item.source()), key});
    }
  }

  r.integer("max_client_conn", p.max_client_conn, 1);
  r.string_choice("log_level", p.log_level, kLogLevels);
  r.choice("log_format", p.log_format);
  if (r.string("metrics_listen", p.metrics_listen, true) && !p.metrics_listen.empty()) {
    if (auto parsed = parse_host_port(p.metrics_listen, std::nullopt); !parsed) {
      r.error("metrics_listen", parsed.error() + R"( (or "" to disable metrics))");
    }
  }
  r.integer("max_message_size", p.max_message_size, 1024, kMaxProtocolMessage);
  r.seconds("client_login_timeout", p.client_login_timeout, 0, true);
  r.seconds("shutdown_timeout", p.shutdown_timeout, 0, false);
  r.seconds("health_check_period", p.health_check_period, 0, true);
  r.integer("max_db_connections", p.max_db_connections, 0);
  r.integer("max_user_connections", p.max_user_connections, 0);
  if (const toml::table* tls = r.table("tls")) {
    TableReader reader(*tls, r.key_path("tls"), r.position_of("tls"), r.errors());
    read_tls(reader, p.tls);
  }
  if (const toml::array* rules = r.array("hba")) {
    for (std::size_t i = 0; i < rules->size(); ++i) {
      const toml::node& item = *rules->get(i);
      const std::string key = fmt::format("{}[{}]", r.key_path("hba"), i);
      const auto* table = item.as_table();
      if (table == nullptr) {
        r.errors().add(to_pos(item.source()), key,
                       fmt::format("expected a table [[pooler.hba]], got {}", describe(item.type())));
        continue;
      }
      TableReader reader(*table, key, to_pos(table->source()), r.errors());
      p.hba.push_back(read_hba_rule(reader, p.tls));
    }
  }
  read_auth_query(r, p.auth_user, p.auth_query, p.auth_dbname, refs);
  r.report_unknown_keys();
}

void read_hosts(TableReader& r, Database& db) {
  std::uint16_t port = 5432;
  r.integer("port", port, 1, 65535);
  const toml::node* host = r.take("host");
  const toml::node* hosts = r.take("hosts");

  if (host != nullptr && hosts != nullptr) {
    r.error("hosts", "give either host or hosts, not both");
    return;
  }
  if (hosts != nullptr) {
    const toml::array* list = r.array("hosts");
    if (list == nullptr) return;
    if (list->empty()) {
      r.error("hosts", "must list at least one host, e.g. [\"db1:5432\", \"db2\"]");
      return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      const toml::node& item = *list->get(i);
      const std::string key = fmt::format("{}[{}]", r.key_path("hosts"), i);
      const auto* text = item.as_string();
      if (text == nullptr) {
        r.errors().add(to_pos(item.source()), key,
                       fmt::format("expected a string \"host[:port]\", got {}", describe(item.type())));
        continue;
      }
      auto parsed = parse_host_port(text->get(), port);
      if (!parsed) {
        r.errors().add(to_pos(item.source()), key, parsed.error());
        continue;
      }
      db.hosts.push_back(std::move(*parsed));
    }
    return;
  }

  std::string name = "127.0.0.1";
  if (r.string("host", name, false) && name.find_first_of(", \t") != std::string::npos) {
    r.error("host", "contains a comma or space; to list several hosts use hosts = [\"h1:5432\", \"h2:5432\"]");
    return;
  }
  db.hosts.push_back(HostPort{.host = std::move(name), .port = port});
}

Database read_database(TableReader& r, std::string_view name, NameRefs& refs) {
  Database db;
  db.name = std::string(name);
  if (name.empty()) r.errors().add(r.position(), r.path(), "a database name must not be empty");
  if (name == kAdminDatabase) {
    r.errors().add(r.position(), r.path(),
                   fmt::format("the name \"{}\" is reserved for the admin console", kAdminDatabase));
  }
  read_hosts(r, db);

  db.dbname = db.name;
  r.string("dbname", db.dbname, false);
  r.optional_string("user", db.user);
  if (r.optional_string("password", db.password)) {
    if (!db.user) {
      r.error("password", "is the password of the forced server login user, but no user is set");
    } else if (classify_password(*db.password) != PasswordKind::kPlain) {
      r.error("password", "is a stored secret; logging in to the server needs the plain password");
    }
  }
  r.choice("pool_mode", db.pool_mode);
  r.integer("pool_size", db.pool_size, 0);
  r.integer("max_overflow", db.max_overflow, -1);
  r.seconds("pool_timeout", db.pool_timeout, 0, true);
  r.optional_seconds("pool_recycle", db.pool_recycle, "never");
  r.boolean("pool_pre_ping", db.pool_pre_ping);
  r.seconds("pre_ping_after", db.pre_ping_after, 0, false);
  r.seconds("pre_ping_timeout", db.pre_ping_timeout, 0, true);
  if (r.integer("min_pool_size", db.min_pool_size, 0) && db.min_pool_size > db.pool_size) {
    r.error("min_pool_size", fmt::format("min_pool_size of {} cannot be larger than pool_size of {}",
                                         db.min_pool_size, db.pool_size));
  }
  r.optional_seconds("idle_timeout", db.idle_timeout, "never");
  r.seconds("connect_timeout", db.connect_timeout, 0, true);
  r.optional_seconds("query_timeout", db.query_timeout, "none");
  r.optional_seconds("idle_transaction_timeout", db.idle_transaction_timeout, "none");
  ResetOnReturn reset = ResetOnReturn::kRollback;
  if (r.choice("reset_on_return", reset)) db.reset_on_return = reset;
  r.boolean("use_lifo", db.use_lifo);
  r.integer("max_prepared_statements", db.max_prepared_statements, 0);
  r.choice("target_session_attrs", db.target_session_attrs);
  r.string_choice("sslmode", db.sslmode, kSslModes);
  r.string("application_name", db.application_name, true);
  r.string("sslrootcert", db.sslrootcert, false);
  r.string("sslcert", db.sslcert, false);
  r.string("sslkey", db.sslkey, false);
  r.string("sslcrl", db.sslcrl, false);
  if (db.sslcert.empty() != db.sslkey.empty()) {
    r.error(db.sslcert.empty() ? "sslkey" : "sslcert", "sslcert and sslkey go together: give both or neither");
  }
  read_auth_query(r, db, refs);
  r.report_unknown_keys();
  return db;
}

User read_user(TableReader& r, std::string_view name, AuthType auth_type) {
  User user{.name = std::string(name), .password = {}};
  if (name.empty()) r.errors().add(r.position(), r.path(), "a user name must not be empty");
  if (r.take("password") == nullptr) {
    r.error("password", "missing; every user needs a password (plain, or a SCRAM-SHA-256 secret)");
  } else if (r.string("password", user.password, false)) {
    if (is_malformed_scram_secret(user.password)) {
      r.error("password",
              "starts like a SCRAM-SHA-256 secret but is not one; expected "
              "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> as in pg_authid");
    } else if (auth_type == AuthType::kScramSha256 && classify_password(user.password) == PasswordKind::kMd5) {
      r.error("password",
              "is an md5 secret, which cannot verify scram-sha-256 clients; give the plain password or its "
              "SCRAM-SHA-256 secret");
    }
  }
  r.report_unknown_keys();
  return user;
}

// Calls read(reader, name) for each NAME of a [section.NAME] table, and puts the results in `out`.
template <typename T, typename Read>
void read_section(TableReader& root, std::string_view section, std::map<std::string, T, std::less<>>& out,
                  Read read) {
  const toml::table* tables = root.table(section);
  if (tables == nullptr) return;
  for (const auto& [key, node] : *tables) {
    const std::string path = fmt::format("{}.{}", section, path_part(key.str()));
    const auto* table = node.as_table();
    if (table == nullptr) {
      root.errors().add(to_pos(node.source()), path,
                        fmt::format("expected a table [{}], got {}", path, describe(node.type())));
      continue;
    }
    TableReader reader(*table, path, table_pos(*table, key), root.errors());
    out.emplace(key.str(), read(reader, key.str()));
  }
}

}  // namespace

Config read_config(const toml::table& root, ErrorList& errors) {
  Config config;
  TableReader top(root, "", to_pos(root.source()), errors);

  NameRefs refs;
  if (const toml::table* pooler = top.table("pooler")) {
    TableReader reader(*pooler, "pooler", top.position_of("pooler"), errors);
    read_pooler(reader, config.pooler, refs);
  }
  read_section(top, "databases", config.databases,
               [&refs](TableReader& r, std::string_view name) { return read_database(r, name, refs); });
  const AuthType auth_type = config.pooler.auth_type;
  read_section(top, "users", config.users,
               [auth_type](TableReader& r, std::string_view name) { return read_user(r, name, auth_type); });
  top.report_unknown_keys();

  for (const auto& admin : refs.admins) {
    if (!config.users.contains(admin.name)) {
      errors.add(admin.pos, admin.key,
                 fmt::format("admin user \"{}\" has no [users.{}] table", admin.name, path_part(admin.name)));
    }
  }
  for (const auto& ref : refs.auth_users) {
    const User* user = config.find_user(ref.name);
    if (user == nullptr) {
      errors.add(ref.pos, ref.key,
                 fmt::format("auth user \"{}\" has no [users.{}] table", ref.name, path_part(ref.name)));
    } else if (classify_password(user->password) != PasswordKind::kPlain) {
      errors.add(ref.pos, ref.key,
                 fmt::format("auth user \"{}\" needs a plain password in [users.{}]: the pooler logs in as it to run "
                             "auth_query",
                             ref.name, path_part(ref.name)));
    }
  }
  for (const auto& ref : refs.auth_dbnames) {
    if (ref.name == kAdminDatabase || !config.databases.contains(ref.name)) {
      errors.add(ref.pos, ref.key, fmt::format("auth_dbname \"{}\" is not a [databases] entry", ref.name));
    }
  }
  return config;
}

}  // namespace pooler::config
