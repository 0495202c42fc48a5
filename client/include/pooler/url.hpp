// Database URLs as SQLAlchemy writes them, for libpq:
//   postgresql://user:pass@host:port/dbname?sslmode=require&application_name=app
//   postgresql://user@db1:5432,db2:5433/app?target_session_attrs=read-write   (multi-host)
//   postgresql://user@/app?host=/var/run/postgresql                           (unix socket)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pooler {
inline namespace client {

struct UrlHost {
  std::string host{};  // name, IPv4 or IPv6 address (without brackets)
  std::optional<int> port{};
  friend bool operator==(const UrlHost&, const UrlHost&) = default;
};

struct Url {
  std::string drivername = "postgresql";
  std::optional<std::string> username{};
  std::optional<std::string> password{};
  std::vector<UrlHost> hosts{};  // empty: libpq's default (PGHOST or the local socket)
  std::optional<std::string> database{};
  // libpq connection keywords from the query string, in order, percent-decoded.
  std::vector<std::pair<std::string, std::string>> query{};

  // Throws ArgumentError: "Could not parse URL from string 'postgresql://app:***@…': <why>".
  [[nodiscard]] static Url parse(std::string_view url);
  // Back to a URL string, percent-encoding as needed; the password shown as *** unless asked.
  [[nodiscard]] std::string render(bool hide_password = true) const;
  // libpq keyword/value pairs (user, password, host, port, dbname, then the query's keywords).
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> to_conninfo() const;
  friend bool operator==(const Url&, const Url&) = default;
};

[[nodiscard]] inline Url make_url(std::string_view url) { return Url::parse(url); }

}  // namespace client
}  // namespace pooler
