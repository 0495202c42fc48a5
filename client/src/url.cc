// URL parsing and rendering (RFC 3986 shape, libpq's multi-host extension).
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "pooler/errors.hpp"
#include "pooler/url.hpp"

namespace pooler::client {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; `plus_is_space` for query strings. Returns false on a bad escape.
bool decode(std::string_view in, std::string& out, bool plus_is_space = false) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return true;
}

std::string encode(std::string_view in, std::string_view keep = "") {
  std::string out;
  for (char c : in) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string masked(std::string_view url) {
  // Hide the password in error messages: scheme://user:***@…
  std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  std::size_t start = scheme + 3;
  std::size_t at = url.find('@', start);
  std::size_t slash = url.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) return std::string(url);
  std::size_t colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

[[noreturn]] void fail(std::string_view url, std::string_view why) {
  throw ArgumentError(fmt::format("Could not parse URL from string '{}': {}", masked(url), why));
}

}  // namespace

Url Url::parse(std::string_view text) {
  Url url;
  std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) fail(text, "expected <scheme>://…");
  std::string_view scheme = text.substr(0, scheme_end);
  if (scheme != "postgresql" && scheme != "postgres" && scheme != "postgresql+libpq" &&
      scheme != "postgresql+pooler") {
    fail(text, fmt::format("unsupported scheme '{}' (use postgresql://)", scheme));
  }
  url.drivername = std::string(scheme);
  std::string_view rest = text.substr(scheme_end + 3);

  std::string_view query;
  if (std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  bool has_path = false;
  if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    has_path = true;
  }
  // userinfo@hostlist; the last '@' so that an unencoded '@' in the password still works.
  if (std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    std::string_view user = userinfo;
    if (std::size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      std::string pw;
      if (!decode(userinfo.substr(colon + 1), pw)) fail(text, "bad %-escape in the password");
      url.password = std::move(pw);
    }
    std::string u;
    if (!decode(user, u)) fail(text, "bad %-escape in the user name");
    if (!u.empty()) url.username = std::move(u);
  }
  // host[:port][,host[:port]…]
  if (!rest.empty()) {
    std::size_t start = 0;
    while (start <= rest.size()) {
      std::size_t comma = rest.find(',', start);
      std::string_view item = rest.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      UrlHost h;
      std::string_view host = item;
      std::string_view port;
      if (!item.empty() && item.front() == '[') {
        std::size_t close = item.find(']');
        if (close == std::string_view::npos) fail(text, "unterminated '[' in an IPv6 host");
        host = item.substr(1, close - 1);
        std::string_view after = item.substr(close + 1);
        if (!after.empty()) {
          if (after.front() != ':') fail(text, "expected ':port' after ']'");
          port = after.substr(1);
          if (port.empty()) fail(text, "empty port");
        }
      } else if (std::size_t colon = item.rfind(':'); colon != std::string_view::npos) {
        host = item.substr(0, colon);
        port = item.substr(colon + 1);
        if (port.empty()) fail(text, "empty port");
      }
      if (host.empty() && port.empty()) fail(text, "empty host in the host list");
      std::string decoded;
      if (!decode(host, decoded)) fail(text, "bad %-escape in a host");
      h.host = std::move(decoded);
      if (!port.empty()) {
        int p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535) {
          fail(text, fmt::format("invalid port '{}' (expected 1-65535)", port));
        }
        h.port = p;
      }
      url.hosts.push_back(std::move(h));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  if (has_path && !path.empty()) {
    std::string db;
    if (!decode(path, db)) fail(text, "bad %-escape in the database name");
    url.database = std::move(db);
  }
  // key=value&key=value
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t amp = query.find('&', start);
    std::string_view item = query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    start = amp == std::string_view::npos ? query.size() : amp + 1;
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) fail(text, fmt::format("query parameter '{}' is not key=value", item));
    std::string key;
    std::string value;
    if (!decode(item.substr(0, eq), key, true) || !decode(item.substr(eq + 1), value, true)) {
      fail(text, "bad %-escape in the query string");
    }
    // libpq keywords, with SQLAlchemy's spellings of the ones named differently.
    if (key == "user" || key == "username") {
      url.username = value;
    } else if (key == "password") {
      url.password = value;
    } else if (key == "dbname" || key == "database") {
      url.database = value;
    } else if (key == "host" && url.hosts.empty()) {
      url.hosts.push_back(UrlHost{value, std::nullopt});  // e.g. a unix socket directory
    } else {
      url.query.emplace_back(std::move(key), std::move(value));
    }
  }
  return url;
}

std::string Url::render(bool hide_password) const {
  std::string s = drivername + "://";
  if (username || password) {
    s += encode(username.value_or(""));
    if (password) {
      s += ':';
      s += hide_password ? std::string("***") : encode(*password);
    }
    s += "@";
  }
  bool socket_host = hosts.size() == 1 && !hosts[0].host.empty() && hosts[0].host.front() == '/';
  if (!socket_host) {
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      if (i > 0) s += ",";
      const auto& h = hosts[i];
      // (appends, not `"[" + host + "]"`: GCC 12's -Wrestrict misfires on those in Release builds)
      if (h.host.find(':') != std::string::npos) {
        s += '[';
        s += h.host;
        s += ']';
      } else {
        s += encode(h.host);
      }
      if (h.port) {
        s += ':';
        s += std::to_string(*h.port);
      }
    }
  }
  if (database) {
    s += '/';
    s += encode(*database);
  }
  char sep = '?';
  if (socket_host) {
    s += fmt::format("{}host={}", sep, encode(hosts[0].host, "/"));
    sep = '&';
  }
  for (const auto& [k, v] : query) {
    s += fmt::format("{}{}={}", sep, encode(k), encode(v, "/"));
    sep = '&';
  }
  return s;
}

std::vector<std::pair<std::string, std::string>> Url::to_conninfo() const {
  std::vector<std::pair<std::string, std::string>> kv;
  if (username) kv.emplace_back("user", *username);
  if (password) kv.emplace_back("password", *password);
  if (!hosts.empty()) {
    std::string host_list;
    std::string port_list;
    bool any_port = false;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      if (i > 0) {
        host_list += ",";
        port_list += ",";
      }
      host_list += hosts[i].host;
      if (hosts[i].port) {
        port_list += std::to_string(*hosts[i].port);
        any_port = true;
      }
    }
    kv.emplace_back("host", host_list);
    if (any_port) kv.emplace_back("port", port_list);
  }
  if (database) kv.emplace_back("dbname", *database);
  for (const auto& [k, v] : query) kv.emplace_back(k, v);
  return kv;
}

}  // namespace pooler::client
