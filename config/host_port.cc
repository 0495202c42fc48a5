// "host:port" parsing shared by the database host list and the metrics listener.
#include "config/host_port.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace pooler::config {

namespace {

std::expected<std::uint16_t, std::string> parse_port(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < 1 || value > 65535) {
    return std::unexpected(fmt::format("invalid port \"{}\" in \"{}\", expected a number from 1 to 65535", text, whole));
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::expected<HostPort, std::string> parse_host_port(std::string_view text, std::optional<std::uint16_t> default_port) {
  std::string_view host = text;
  std::optional<std::string_view> port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return std::unexpected(fmt::format("missing ']' in \"{}\"", text));
    }
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) {
        return std::unexpected(fmt::format("unexpected \"{}\" after ']' in \"{}\", expected \":port\"", rest, text));
      }
      port_text = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }

  if (host.empty()) return std::unexpected(fmt::format("missing host in \"{}\"", text));
  // The daemon hands hosts to libpq as a comma-separated list, so a comma or space inside one would split it.
  if (host.find_first_of(", \t") != std::string_view::npos) {
    return std::unexpected(fmt::format("host \"{}\" contains a comma or space; give one host per entry", host));
  }

  HostPort result{.host = std::string(host)};
  if (port_text) {
    auto port = parse_port(*port_text, text);
    if (!port) return std::unexpected(port.error());
    result.port = *port;
  } else if (default_port) {
    result.port = *default_port;
  } else {
    return std::unexpected(fmt::format("missing port in \"{}\", expected \"host:port\"", text));
  }
  return result;
}

}  // namespace pooler::config
