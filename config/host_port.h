// Parsing of "host:port" strings as written in `hosts` and `metrics_listen`.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace pooler::config {

// Accepts "host", "host:port", "[v6]:port", "[v6]" and a bare IPv6 literal such as "::1" (more than one
// colon without brackets can only be an address, so it is taken whole). Without a port, default_port is used;
// when default_port is nullopt a port is required. The error is a message without the key.
[[nodiscard]] std::expected<HostPort, std::string> parse_host_port(std::string_view text,
                                                                   std::optional<std::uint16_t> default_port);

}  // namespace pooler::config
