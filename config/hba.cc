// pg_hba.conf matching: connection type, database, user, address — in that order, first match wins.
#include "config/hba.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace pooler::config {

std::optional<IpNet> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 63) return std::nullopt;
  const std::string s(text);
  IpNet net;
  if (inet_pton(AF_INET, s.c_str(), net.bytes.data()) == 1) {
    net.family = 4;
    net.prefix = 32;
    return net;
  }
  if (inet_pton(AF_INET6, s.c_str(), net.bytes.data()) == 1) {
    net.family = 6;
    net.prefix = 128;
    return net;
  }
  return std::nullopt;
}

std::expected<IpNet, std::string> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    if (parse_ip(text)) {
      const bool v6 = text.find(':') != std::string_view::npos;
      return std::unexpected(fmt::format("\"{}\" has no prefix length; a single host is \"{}/{}\"", text, text,
                                         v6 ? 128 : 32));
    }
    return std::unexpected(fmt::format("invalid address \"{}\", expected \"all\" or a CIDR such as "
                                       "\"10.0.0.0/8\" or \"::1/128\"",
                                       text));
  }
  auto net = parse_ip(text.substr(0, slash));
  if (!net) {
    return std::unexpected(fmt::format("invalid IP address \"{}\" in \"{}\"", text.substr(0, slash), text));
  }
  const std::string_view bits = text.substr(slash + 1);
  const int max = net->family == 4 ? 32 : 128;
  int prefix = -1;
  auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
  if (bits.empty() || ec != std::errc{} || end != bits.data() + bits.size() || prefix < 0 || prefix > max) {
    return std::unexpected(fmt::format("invalid prefix length \"{}\" in \"{}\", expected 0 to {}", bits, text, max));
  }
  net->prefix = prefix;
  // Host bits set usually means a typo in the prefix ("10.1.2.3/8"): PostgreSQL rejects it, so do we.
  IpNet masked = *net;
  const int nbytes = net->family == 4 ? 4 : 16;
  for (int i = 0; i < nbytes; ++i) {
    const int keep = std::clamp(prefix - i * 8, 0, 8);
    masked.bytes[i] &= static_cast<std::uint8_t>(0xff00 >> keep);
  }
  if (masked.bytes != net->bytes) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(net->family == 4 ? AF_INET : AF_INET6, masked.bytes.data(), buf, sizeof buf);
    return std::unexpected(fmt::format("\"{}\" has bits set beyond its /{} prefix; did you mean \"{}/{}\"?", text,
                                       prefix, buf, prefix));
  }
  return *net;
}

bool net_contains(const IpNet& net, const IpNet& addr) {
  if (net.family != addr.family) return false;
  int bits = net.prefix;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<std::uint8_t>(0xff00 >> std::min(bits, 8));
    if ((net.bytes[i] & mask) != (addr.bytes[i] & mask)) return false;
  }
  return true;
}

namespace {

bool type_matches(HbaType type, const HbaRequest& r) {
  switch (type) {
    case HbaType::kLocal: return r.local;
    case HbaType::kHost: return !r.local;
    case HbaType::kHostSsl: return !r.local && r.ssl;
    case HbaType::kHostNoSsl: return !r.local && !r.ssl;
  }
  return false;
}

bool database_matches(const HbaRule& rule, const HbaRequest& r) {
  return std::any_of(rule.databases.begin(), rule.databases.end(), [&](const std::string& d) {
    if (d == "all") return true;
    if (d == "sameuser") return r.database == r.user;
    return d == r.database;
  });
}

bool user_matches(const HbaRule& rule, const HbaRequest& r) {
  return std::any_of(rule.users.begin(), rule.users.end(),
                     [&](const std::string& u) { return u == "all" || u == r.user; });
}

bool address_matches(const HbaRule& rule, const HbaRequest& r) {
  if (rule.type == HbaType::kLocal) return true;
  switch (rule.address_kind) {
    case HbaAddress::kAll: return true;
    case HbaAddress::kCidr: return rule.address && r.address && net_contains(*rule.address, *r.address);
    case HbaAddress::kSameHost:
      // As PostgreSQL's check_same_host_or_net: the client's address is one of this host's own.
      return r.address && std::any_of(r.interfaces.begin(), r.interfaces.end(), [&](const IpNet& ifa) {
               return ifa.family == r.address->family && ifa.bytes == r.address->bytes;
             });
    case HbaAddress::kSameNet:
      return r.address && std::any_of(r.interfaces.begin(), r.interfaces.end(),
                                       [&](const IpNet& ifa) { return net_contains(ifa, *r.address); });
  }
  return false;
}

std::string_view encryption(const HbaRequest& r) { return r.ssl ? "SSL encryption" : "no encryption"; }

}  // namespace

bool uses_interfaces(std::span<const HbaRule> rules) {
  return std::any_of(rules.begin(), rules.end(), [](const HbaRule& rule) {
    return rule.type != HbaType::kLocal &&
           (rule.address_kind == HbaAddress::kSameHost || rule.address_kind == HbaAddress::kSameNet);
  });
}

const HbaRule* match_hba(std::span<const HbaRule> rules, const HbaRequest& request) {
  for (const HbaRule& rule : rules) {
    if (type_matches(rule.type, request) && database_matches(rule, request) && user_matches(rule, request) &&
        address_matches(rule, request)) {
      return &rule;
    }
  }
  return nullptr;
}

std::string hba_no_match_message(std::string_view host, const HbaRequest& r) {
  return fmt::format("no pooler.hba entry for host \"{}\", user \"{}\", database \"{}\", {}", host, r.user,
                     r.database, encryption(r));
}

std::string hba_reject_message(std::string_view host, const HbaRequest& r) {
  return fmt::format("pooler.hba rejects connection for host \"{}\", user \"{}\", database \"{}\", {}", host,
                     r.user, r.database, encryption(r));
}

}  // namespace pooler::config
