// Message builders: the only place that knows how the pooler's own outgoing messages are laid out.
#include "protocol/writer.h"

#include <cassert>
#include <limits>

#include "protocol/auth_messages.h"

namespace pooler::protocol {
namespace {

void write_authentication(std::string& out, std::int32_t code, std::string_view data) {
  auto start = begin_message(out, 'R');
  append_int32(out, code);
  out.append(data);
  finish_message(out, start);
}

void write_fields(std::string& out, char type, const ErrorFields& e) {
  auto start = begin_message(out, type);
  auto field = [&out](char code, std::string_view value) {
    if (value.empty()) return;
    out.push_back(code);
    append_cstring(out, value);
  };
  auto severity = severity_name(e.severity);
  // S may be localized by PostgreSQL; we never localize, so S and V carry the same text.
  field('S', severity);
  field('V', severity);
  field('C', e.sqlstate);
  field('M', e.message);
  field('D', e.detail);
  field('H', e.hint);
  out.push_back('\0');
  finish_message(out, start);
}

}  // namespace

std::size_t begin_message(std::string& out, char type) {
  out.push_back(type);
  auto start = out.size();
  out.append(4, '\0');  // length, filled in by finish_message
  return start;
}

void finish_message(std::string& out, std::size_t start) {
  auto length = out.size() - start;
  assert(length <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()));
  auto v = static_cast<std::uint32_t>(length);
  out[start] = static_cast<char>(v >> 24);
  out[start + 1] = static_cast<char>(v >> 16);
  out[start + 2] = static_cast<char>(v >> 8);
  out[start + 3] = static_cast<char>(v);
}

void append_int16(std::string& out, std::int16_t v) {
  auto u = static_cast<std::uint16_t>(v);
  out.push_back(static_cast<char>(u >> 8));
  out.push_back(static_cast<char>(u));
}

void append_int32(std::string& out, std::int32_t v) {
  auto u = static_cast<std::uint32_t>(v);
  out.push_back(static_cast<char>(u >> 24));
  out.push_back(static_cast<char>(u >> 16));
  out.push_back(static_cast<char>(u >> 8));
  out.push_back(static_cast<char>(u));
}

void append_cstring(std::string& out, std::string_view s) {
  out.append(s.substr(0, s.find('\0')));
  out.push_back('\0');
}

void write_authentication_ok(std::string& out) { write_authentication(out, kAuthOk, {}); }

void write_authentication_cleartext_password(std::string& out) {
  write_authentication(out, kAuthCleartextPassword, {});
}

void write_authentication_md5_password(std::string& out, std::array<std::uint8_t, 4> salt) {
  auto start = begin_message(out, 'R');
  append_int32(out, kAuthMd5Password);
  for (auto b : salt) out.push_back(static_cast<char>(b));
  finish_message(out, start);
}

void write_authentication_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms) {
  auto start = begin_message(out, 'R');
  append_int32(out, kAuthSasl);
  for (auto m : mechanisms) append_cstring(out, m);
  out.push_back('\0');
  finish_message(out, start);
}

void write_authentication_sasl_continue(std::string& out, std::string_view data) {
  write_authentication(out, kAuthSaslContinue, data);
}

void write_authentication_sasl_final(std::string& out, std::string_view data) {
  write_authentication(out, kAuthSaslFinal, data);
}

void write_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  auto start = begin_message(out, 'S');
  append_cstring(out, name);
  append_cstring(out, value);
  finish_message(out, start);
}

void write_backend_key_data(std::string& out, std::int32_t process_id, std::int32_t secret_key) {
  auto start = begin_message(out, 'K');
  append_int32(out, process_id);
  append_int32(out, secret_key);
  finish_message(out, start);
}

void write_ready_for_query(std::string& out, char status) {
  auto start = begin_message(out, 'Z');
  out.push_back(status);
  finish_message(out, start);
}

void write_negotiate_protocol_version(std::string& out, int newest_minor,
                                      std::span<const std::string> unrecognized_options) {
  auto start = begin_message(out, 'v');
  append_int32(out, newest_minor);
  append_int32(out, static_cast<std::int32_t>(unrecognized_options.size()));
  for (const auto& option : unrecognized_options) append_cstring(out, option);
  finish_message(out, start);
}

std::string_view severity_name(Severity s) {
  switch (s) {
    case Severity::kError: return "ERROR";
    case Severity::kFatal: return "FATAL";
    case Severity::kPanic: return "PANIC";
    case Severity::kWarning: return "WARNING";
    case Severity::kNotice: return "NOTICE";
    case Severity::kInfo: return "INFO";
    case Severity::kLog: return "LOG";
    case Severity::kDebug: return "DEBUG";
  }
  return "ERROR";
}

void write_error_response(std::string& out, const ErrorFields& e) { write_fields(out, 'E', e); }

void write_notice_response(std::string& out, const ErrorFields& e) { write_fields(out, 'N', e); }

void write_query(std::string& out, std::string_view sql) {
  auto start = begin_message(out, 'Q');
  append_cstring(out, sql);
  finish_message(out, start);
}

void write_terminate(std::string& out) { finish_message(out, begin_message(out, 'X')); }

void write_sync(std::string& out) { finish_message(out, begin_message(out, 'S')); }

}  // namespace pooler::protocol
