// Text encodings of parameters and decoders of result text (PostgreSQL's output formats, ISO DateStyle).
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "pooler/types.hpp"

namespace pooler::client {

std::uint32_t array_oid(std::uint32_t element) {
  switch (element) {
    case oid::kBool: return 1000;
    case oid::kBytea: return 1001;
    case oid::kInt2: return 1005;
    case oid::kInt4: return 1007;
    case oid::kText: return 1009;
    case oid::kInt8: return 1016;
    case oid::kFloat4: return 1021;
    case oid::kFloat8: return 1022;
    case oid::kDate: return 1182;
    case oid::kTimestamp: return 1115;
    case oid::kTimestamptz: return 1185;
    case oid::kNumeric: return 1231;
    case oid::kUuid: return 2951;
    case oid::kJson: return 199;
    case oid::kJsonb: return 3807;
    default: return 0;
  }
}

std::uint32_t detail::element_oid(std::uint32_t array_type) {
  for (std::uint32_t e : {oid::kBool, oid::kBytea, oid::kInt2, oid::kInt4, oid::kText, oid::kInt8, oid::kFloat4,
                          oid::kFloat8, oid::kDate, oid::kTimestamp, oid::kTimestamptz, oid::kNumeric, oid::kUuid,
                          oid::kJson, oid::kJsonb}) {
    if (array_oid(e) == array_type) return e;
  }
  return 0;
}

std::string type_name(std::uint32_t type) {
  switch (type) {
    case oid::kUnknown: return "unknown";
    case oid::kBool: return "bool";
    case oid::kBytea: return "bytea";
    case oid::kInt8: return "int8";
    case oid::kInt2: return "int2";
    case oid::kInt4: return "int4";
    case oid::kText: return "text";
    case 1043: return "varchar";
    case 1042: return "bpchar";
    case 19: return "name";
    case oid::kJson: return "json";
    case oid::kFloat4: return "float4";
    case oid::kFloat8: return "float8";
    case oid::kDate: return "date";
    case oid::kTimestamp: return "timestamp";
    case oid::kTimestamptz: return "timestamptz";
    case oid::kNumeric: return "numeric";
    case oid::kUuid: return "uuid";
    case oid::kJsonb: return "jsonb";
    default: {
      if (std::uint32_t e = detail::element_oid(type); e != 0) return type_name(e) + "[]";
      return fmt::format("oid {}", type);
    }
  }
}

// --- Uuid -----------------------------------------------------------------------------------------------

Uuid Uuid::parse(std::string_view text) {
  std::string_view t = text;
  if (t.size() >= 2 && t.front() == '{' && t.back() == '}') t = t.substr(1, t.size() - 2);
  Uuid u;
  std::size_t nibbles = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c == '-' && (i == 8 || i == 13 || i == 18 || i == 23) && t.size() == 36) continue;
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    if (v < 0 || nibbles >= 32) throw ConversionError(fmt::format("'{}' is not a UUID", text));
    u.bytes[nibbles / 2] = static_cast<std::uint8_t>(u.bytes[nibbles / 2] | (nibbles % 2 == 0 ? v << 4 : v));
    ++nibbles;
  }
  if (nibbles != 32) throw ConversionError(fmt::format("'{}' is not a UUID", text));
  return u;
}

std::string Uuid::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += kHex[bytes[i] >> 4];
    s += kHex[bytes[i] & 0xF];
  }
  return s;
}

// --- Value ----------------------------------------------------------------------------------------------

std::string Value::repr() const {
  if (!data_) return "NULL";
  if (binary_ && oid_ == oid::kBytea) {
    std::string s = "'\\x";
    for (unsigned char c : *data_) s += fmt::format("{:02x}", c);
    return s + "'";
  }
  if (oid_ == oid::kInt2 || oid_ == oid::kInt4 || oid_ == oid::kInt8 || oid_ == oid::kFloat4 ||
      oid_ == oid::kFloat8 || oid_ == oid::kNumeric) {
    return *data_;
  }
  std::string s = "'";
  for (char c : *data_) {
    if (c == '\'') s += '\'';
    s += c;
  }
  return s + "'";
}

// --- decoders -------------------------------------------------------------------------------------------

namespace detail {

void conversion_failed(std::string_view text, std::uint32_t type, std::string_view target) {
  std::string shown(text.substr(0, 64));
  if (text.size() > 64) shown += "…";
  throw ConversionError(fmt::format("cannot convert '{}' (type {}) to {}", shown, type_name(type), target));
}

std::int64_t decode_int(std::string_view text, std::uint32_t type, std::int64_t min, std::int64_t max,
                        std::string_view target) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && (v < min || v > max))) {
    throw ConversionError(fmt::format("value {} (type {}) is out of range for {}", text, type_name(type), target));
  }
  if (ec != std::errc() || ptr != text.data() + text.size()) conversion_failed(text, type, target);
  return v;
}

std::uint64_t decode_uint(std::string_view text, std::uint32_t type, std::uint64_t max, std::string_view target) {
  std::uint64_t v = 0;
  if (!text.empty() && text.front() == '-') {
    throw ConversionError(fmt::format("value {} (type {}) is out of range for {}", text, type_name(type), target));
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && v > max)) {
    throw ConversionError(fmt::format("value {} (type {}) is out of range for {}", text, type_name(type), target));
  }
  if (ec != std::errc() || ptr != text.data() + text.size()) conversion_failed(text, type, target);
  return v;
}

std::string encode_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back exactly
  return std::string(buf, ptr);
}

double decode_double(std::string_view text, std::uint32_t type) {
  if (text == "NaN") return std::nan("");
  if (text == "Infinity") return HUGE_VAL;
  if (text == "-Infinity") return -HUGE_VAL;
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) conversion_failed(text, type, "double");
  return v;
}

namespace {

// Days since 1970-01-01 of a civil date (proleptic Gregorian), via std::chrono's calendar.
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d))
      .time_since_epoch()
      .count();
}

// Reads exactly `digits` digits at text[pos].
bool read_digits(std::string_view text, std::size_t& pos, std::size_t digits, int& out) {
  if (pos + digits > text.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += digits;
  return true;
}

// YYYY-MM-DD at the start of text (years of 4+ digits).
bool read_date(std::string_view text, std::size_t& pos, std::int64_t& days) {
  std::size_t dash = text.find('-', pos + 1);
  if (dash == std::string_view::npos || dash - pos < 4) return false;
  int y = 0;
  int m = 0;
  int d = 0;
  if (!read_digits(text, pos, dash - pos, y) || text[pos] != '-') return false;
  ++pos;
  if (!read_digits(text, pos, 2, m) || pos >= text.size() || text[pos] != '-') return false;
  ++pos;
  if (!read_digits(text, pos, 2, d)) return false;
  auto ymd = std::chrono::year(y) / std::chrono::month(static_cast<unsigned>(m)) / std::chrono::day(static_cast<unsigned>(d));
  if (!ymd.ok()) return false;
  days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  return true;
}

}  // namespace

std::string encode_timestamp(std::int64_t micros) {
  using namespace std::chrono;
  sys_time<microseconds> tp{microseconds(micros)};
  sys_days day = floor<days>(tp);
  year_month_day ymd(day);
  auto tod = tp - day;
  auto h = duration_cast<hours>(tod);
  auto mi = duration_cast<minutes>(tod - h);
  auto s = duration_cast<seconds>(tod - h - mi);
  auto us = (tod - h - mi - s).count();
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), h.count(), mi.count(),
                     s.count(), us);
}

std::int64_t decode_timestamp(std::string_view text, std::uint32_t type) {
  // ISO: "2024-05-06 07:08:09[.ffffff][+HH[:MM[:SS]]]"; timestamp (no zone) is read as UTC.
  std::size_t pos = 0;
  std::int64_t days = 0;
  int h = 0;
  int mi = 0;
  int s = 0;
  auto bad = [&]() { conversion_failed(text, type, "a std::chrono time point (ISO DateStyle timestamp)"); };
  if (!read_date(text, pos, days)) bad();
  if (pos >= text.size() || (text[pos] != ' ' && text[pos] != 'T')) bad();
  ++pos;
  if (!read_digits(text, pos, 2, h) || pos >= text.size() || text[pos++] != ':' || !read_digits(text, pos, 2, mi) ||
      pos >= text.size() || text[pos++] != ':' || !read_digits(text, pos, 2, s)) {
    bad();
  }
  std::int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) {
        micros = micros * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    for (; digits < 6; ++digits) micros *= 10;
  }
  std::int64_t offset = 0;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0;
    int om = 0;
    int os = 0;
    if (!read_digits(text, pos, 2, oh)) bad();
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!read_digits(text, pos, 2, om)) bad();
      if (pos < text.size() && text[pos] == ':') {
        ++pos;
        if (!read_digits(text, pos, 2, os)) bad();
      }
    }
    offset = sign * (oh * 3600 + om * 60 + os);
  }
  if (pos != text.size()) bad();
  std::int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset;
  return secs * 1'000'000 + micros;
}

std::string encode_date(std::int32_t days) {
  std::chrono::year_month_day ymd{std::chrono::sys_days(std::chrono::days(days))};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()));
}

std::int32_t decode_date(std::string_view text, std::uint32_t type) {
  std::size_t pos = 0;
  std::int64_t days = 0;
  if (!read_date(text, pos, days) || pos != text.size()) {
    conversion_failed(text, type, "std::chrono::year_month_day (ISO DateStyle date)");
  }
  return static_cast<std::int32_t>(days);
}

std::string encode_array(const std::vector<std::optional<std::string>>& elements) {
  std::string s = "{";
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (i > 0) s += ',';
    if (!elements[i]) {
      s += "NULL";
      continue;
    }
    s += '"';
    for (char c : *elements[i]) {
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += '"';
  }
  return s + "}";
}

std::vector<std::optional<std::string>> decode_array(std::string_view text, std::uint32_t type) {
  std::vector<std::optional<std::string>> out;
  auto bad = [&](std::string_view why) {
    conversion_failed(text, type, fmt::format("a one-dimensional array ({})", why));
  };
  std::size_t pos = 0;
  // An explicit lower bound ("[0:2]={…}") is accepted and ignored.
  if (!text.empty() && text.front() == '[') {
    std::size_t eq = text.find('=');
    if (eq == std::string_view::npos) bad("bad bounds");
    pos = eq + 1;
  }
  if (pos >= text.size() || text[pos] != '{' || text.back() != '}') bad("missing braces");
  ++pos;
  const std::size_t end = text.size() - 1;
  if (pos == end) return out;
  while (pos <= end) {
    if (text[pos] == '{') bad("multidimensional arrays are not supported");
    if (text[pos] == '"') {
      std::string e;
      ++pos;
      while (pos < end && text[pos] != '"') {
        if (text[pos] == '\\') ++pos;
        if (pos < end) e += text[pos++];
      }
      if (pos >= end) bad("unterminated quote");
      ++pos;  // closing quote
      out.emplace_back(std::move(e));
    } else {
      std::size_t stop = pos;
      while (stop < end && text[stop] != ',') ++stop;
      std::string_view e = text.substr(pos, stop - pos);
      if (e == "NULL") {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(std::string(e));
      }
      pos = stop;
    }
    if (pos == end) break;
    if (text[pos] != ',') bad("expected ','");
    ++pos;
  }
  return out;
}

std::optional<std::string> element_text(const Value& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_binary() && v.type_oid() == oid::kBytea) {
    std::string s = "\\x";
    for (unsigned char c : *v.data()) s += fmt::format("{:02x}", c);
    return s;
  }
  return *v.data();
}

}  // namespace detail

bool Codec<bool>::decode(std::string_view text, std::uint32_t type) {
  if (text == "t" || text == "true") return true;
  if (text == "f" || text == "false") return false;
  detail::conversion_failed(text, type, "bool");
}

Bytes Codec<Bytes>::decode(std::string_view text, std::uint32_t type) {
  // bytea's hex output format ("\x0102…"), the default since PostgreSQL 9.0.
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) {
    detail::conversion_failed(text, type, "pooler::Bytes (bytea in hex format)");
  }
  Bytes out;
  out.reserve((text.size() - 2) / 2);
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 2; i < text.size(); i += 2) {
    int hi = hex(text[i]);
    int lo = hex(text[i + 1]);
    if (hi < 0 || lo < 0) detail::conversion_failed(text, type, "pooler::Bytes (bytea in hex format)");
    out.push_back(static_cast<std::byte>(hi * 16 + lo));
  }
  return out;
}

}  // namespace pooler::client
