// The key=value → JSON conversion and the spdlog formatter that applies it per log line.
#include "daemon/logging.h"

#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace pooler::daemon {

namespace {

bool is_key_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'; }
bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

// Length of the valid UTF-8 sequence at the front of `s`, or 0 when it is not one (overlong forms,
// surrogates and code points past U+10FFFF included).
std::size_t utf8_sequence(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

// Caches the formatted second, since many lines share it.
class TimestampCache {
 public:
  void format(std::chrono::system_clock::time_point tp, std::string& out) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ms / 1000);
    long frac = static_cast<long>(ms % 1000);
    if (frac < 0) {  // before 1970: keep the fraction positive
      frac += 1000;
      --secs;
    }
    if (secs != cached_secs_ || prefix_.empty()) {
      std::tm tm{};
      gmtime_r(&secs, &tm);
      std::array<char, 32> buf{};
      const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
      prefix_.assign(buf.data(), n);
      cached_secs_ = secs;
    }
    out += prefix_;
    std::array<char, 8> f{};
    std::snprintf(f.data(), f.size(), ".%03ldZ", frac);
    out += f.data();
  }

 private:
  std::time_t cached_secs_ = 0;
  std::string prefix_;
};

class LogFormatter final : public spdlog::formatter {
 public:
  explicit LogFormatter(config::LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    line_.clear();
    ts_.clear();
    clock_.format(msg.time, ts_);
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (format_ == config::LogFormat::kJson) {
      append_json_line(line_, ts_, level_name(msg.level), payload);
    } else {
      append_text_line(line_, ts_, level_name(msg.level), payload);
    }
    dest.append(line_.data(), line_.data() + line_.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LogFormatter>(format_); }

 private:
  config::LogFormat format_;
  TimestampCache clock_;
  std::string ts_;
  std::string line_;
};

}  // namespace

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  using L = spdlog::level::level_enum;
  static constexpr std::pair<std::string_view, L> kNames[] = {
      {"trace", L::trace}, {"debug", L::debug},       {"info", L::info},         {"warn", L::warn},
      {"warning", L::warn}, {"error", L::err},        {"critical", L::critical}, {"off", L::off},
  };
  for (const auto& [n, l] : kNames) {
    if (n == name) return l;
  }
  return std::nullopt;
}

void setup_logging(config::LogFormat format, const std::string& level, spdlog::sink_ptr sink) {
  if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(make_log_formatter(format));
  auto logger = std::make_shared<spdlog::logger>("pooler", std::move(sink));
  const auto lvl = parse_log_level(level);
  logger->set_level(lvl.value_or(spdlog::level::info));
  logger->flush_on(spdlog::level::info);
  spdlog::drop("pooler");
  spdlog::set_default_logger(logger);
  if (!lvl) spdlog::warn("event=bad_log_level requested={} using=info", log_value(level));
}

void set_log_level(const std::string& level) {
  const auto lvl = parse_log_level(level);
  if (!lvl) {
    spdlog::warn("event=bad_log_level requested={} using={}", log_value(level),
                 level_name(spdlog::default_logger()->level()));
    return;
  }
  spdlog::default_logger()->set_level(*lvl);
}

std::string log_value(std::string_view value) {
  bool bare = !value.empty();
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '"' || c == '\\' || u == 0x7F) {
      bare = false;
      break;
    }
  }
  if (bare) return std::string(value);
  std::string out;
  out.reserve(value.size() + 2);
  out += '"';
  for (char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  out += '"';
  return out;
}

std::optional<LogFields> parse_key_values(std::string_view m) {
  LogFields out;
  std::size_t i = 0;
  for (;;) {
    while (i < m.size() && is_space(m[i])) ++i;
    if (i == m.size()) break;
    if (!is_key_start(m[i])) return std::nullopt;
    const std::size_t key_start = i;
    while (i < m.size() && is_key_char(m[i])) ++i;
    if (i == m.size() || m[i] != '=') return std::nullopt;
    std::string key(m.substr(key_start, i - key_start));
    ++i;  // '='
    std::string value;
    if (i < m.size() && m[i] == '"') {
      ++i;
      bool closed = false;
      while (i < m.size()) {
        const char c = m[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\' || i == m.size()) {
          value += c;
          continue;
        }
        const char e = m[i++];
        switch (e) {
          case '"': value += '"'; break;
          case '\\': value += '\\'; break;
          case 'n': value += '\n'; break;
          case 'r': value += '\r'; break;
          case 't': value += '\t'; break;
          default:
            value += '\\';
            value += e;
        }
      }
      if (!closed) return std::nullopt;
      if (i < m.size() && !is_space(m[i])) return std::nullopt;  // junk glued to the closing quote
    } else {
      const std::size_t v = i;
      while (i < m.size() && !is_space(m[i])) ++i;
      value.assign(m.substr(v, i - v));
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  if (out.empty()) return std::nullopt;
  return out;
}

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s.substr(i));
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
}

void append_json_line(std::string& out, std::string_view ts, std::string_view level, std::string_view message) {
  out += "{\"ts\":";
  append_json_string(out, ts);
  out += ",\"level\":";
  append_json_string(out, level);
  if (auto fields = parse_key_values(message)) {
    for (std::size_t k = 0; k < fields->size(); ++k) {
      const std::string& key = (*fields)[k].first;
      bool seen = key == "ts" || key == "level";
      for (std::size_t j = 0; j < k && !seen; ++j) seen = (*fields)[j].first == key;
      if (seen) continue;
      out += ',';
      append_json_string(out, key);
      out += ':';
      append_json_string(out, (*fields)[k].second);
    }
  } else {
    out += ",\"msg\":";
    append_json_string(out, message);
  }
  out += "}\n";
}

void append_text_line(std::string& out, std::string_view ts, std::string_view level, std::string_view message) {
  out += ts;
  out += ' ';
  out += level;
  out += ' ';
  for (char c : message) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  out += '\n';
}

std::unique_ptr<spdlog::formatter> make_log_formatter(config::LogFormat format) {
  return std::make_unique<LogFormatter>(format);
}

}  // namespace pooler::daemon
