// Access rules in pg_hba.conf's shape: parsing of the address column and the first-match-wins lookup.
// Pure: the daemon describes a connection attempt and gets back the rule that decides it.
#pragma once

#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"

namespace pooler::config {

// "10.0.0.0/8", "192.168.1.7/32", "::1/128", "fe80::/10". Bits beyond the prefix must be zero, as
// PostgreSQL requires of pg_hba.conf; the error says what to write instead.
[[nodiscard]] std::expected<IpNet, std::string> parse_cidr(std::string_view text);
// One address, IPv4 ("127.0.0.1") or IPv6 ("::1"), as a full-length IpNet; nullopt when it is neither.
[[nodiscard]] std::optional<IpNet> parse_ip(std::string_view text);
// Whether `addr` (a full-length address) lies in `net`. Families never mix, as in PostgreSQL: an IPv4 rule
// does not match an IPv4-mapped IPv6 client.
[[nodiscard]] bool net_contains(const IpNet& net, const IpNet& addr);

// What is known about a connection attempt when the rules are checked (after the startup packet).
struct HbaRequest {
  bool local = false;                   // came over the unix socket
  bool ssl = false;                     // TLS is in use
  std::optional<IpNet> address;         // the client's address (TCP only)
  std::string_view database;
  std::string_view user;
  // The pooler host's interface addresses, each with its netmask as the prefix, for samehost/samenet
  // rules (see uses_interfaces); rules of those kinds match nothing when it is empty.
  std::span<const IpNet> interfaces;
};

// Whether any rule is samehost/samenet, i.e. whether HbaRequest::interfaces has to be filled in.
[[nodiscard]] bool uses_interfaces(std::span<const HbaRule> rules);

// The first rule that matches, or nullptr when none does (the caller then refuses the connection).
[[nodiscard]] const HbaRule* match_hba(std::span<const HbaRule> rules, const HbaRequest& request);

// PostgreSQL's wording for the refusals, with "pooler.hba" for "pg_hba.conf" and the same encryption suffix:
//   no pooler.hba entry for host "10.1.2.3", user "app", database "app", SSL encryption
//   pooler.hba rejects connection for host "[local]", user "app", database "app", no encryption
[[nodiscard]] std::string hba_no_match_message(std::string_view host, const HbaRequest& request);
[[nodiscard]] std::string hba_reject_message(std::string_view host, const HbaRequest& request);

}  // namespace pooler::config
