// Log setup: spdlog's default logger writes one line per event to stderr, either as text
// (`2026-11-25T06:44:58.775Z info event=login client=3 …`) or, with log_format = "json", as one JSON object
// per line whose fields are the message's key=value pairs.
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace pooler::daemon {

// Replaces spdlog's default logger with ours ("pooler", to stderr unless `sink` is given) using the
// formatter for `format`, at `level` (see parse_log_level; an unknown name leaves "info" and warns).
void setup_logging(config::LogFormat format, const std::string& level, spdlog::sink_ptr sink = nullptr);

// Changes the default logger's level (config reload). An unknown name keeps the current level and warns.
void set_log_level(const std::string& level);

// "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off"; nullopt for anything else.
[[nodiscard]] std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

// Writes `value` so the key=value parser reads it back whole: bare when it is a non-empty run of printable
// characters without spaces, quotes or backslashes; otherwise in double quotes with `"`, `\`, newline,
// CR and tab escaped as \" \\ \n \r \t. For call sites logging text they do not control:
// spdlog::info("event=x error={}", log_value(err)).
[[nodiscard]] std::string log_value(std::string_view value);

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Parses a message of space-separated key=value pairs. Keys are [A-Za-z_][A-Za-z0-9_.-]*; a value is either
// bare (everything up to the next space, possibly empty) or double-quoted with the escapes log_value writes
// (any other backslash pair is kept as written). nullopt when the message is not of that shape (including
// an empty message).
[[nodiscard]] std::optional<LogFields> parse_key_values(std::string_view message);

// Appends `s` as a JSON string body (no surrounding quotes): `"` `\` and control characters escaped, valid
// UTF-8 passed through, each byte of an invalid UTF-8 sequence replaced by U+FFFD.
void append_json_escaped(std::string& out, std::string_view s);

// One JSON log line (with its '\n'): {"ts":…,"level":…, then the message's fields in order, all as strings,
// or "msg":<the raw message> when it is not key=value. A field named like an earlier one (including "ts"
// and "level") is dropped, so every key appears once.
void append_json_line(std::string& out, std::string_view ts, std::string_view level, std::string_view message);

// One text log line (with its '\n'): "<ts> <level> <message>", newlines and CRs in the message written as
// \n and \r so an event never spans lines.
void append_text_line(std::string& out, std::string_view ts, std::string_view level, std::string_view message);

// The spdlog formatter used by setup_logging, for custom sinks. Timestamps are UTC with milliseconds
// (2026-11-25T06:44:58.775Z); levels are trace, debug, info, warn, error, critical.
[[nodiscard]] std::unique_ptr<spdlog::formatter> make_log_formatter(config::LogFormat format);

}  // namespace pooler::daemon
