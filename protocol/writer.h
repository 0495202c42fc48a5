// Builders for the messages the pooler itself sends. Each appends one complete message (type byte, Int32
// length, body) to `out`; nothing is allocated beyond out's own growth, so callers can batch into one buffer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace pooler::protocol {

// Building blocks for messages without a dedicated builder. A message is begin_message(), appends,
// then finish_message() with the offset begin_message() returned, which fills in the length.
std::size_t begin_message(std::string& out, char type);
void finish_message(std::string& out, std::size_t start);
void append_int16(std::string& out, std::int16_t v);
void append_int32(std::string& out, std::int32_t v);
// Writes `s` up to its first NUL, then a NUL: an embedded NUL would end the String early on the receiver
// and desynchronise the rest of the message.
void append_cstring(std::string& out, std::string_view s);

void write_authentication_ok(std::string& out);
void write_authentication_cleartext_password(std::string& out);
void write_authentication_md5_password(std::string& out, std::array<std::uint8_t, 4> salt);
void write_authentication_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms);
void write_authentication_sasl_continue(std::string& out, std::string_view data);
void write_authentication_sasl_final(std::string& out, std::string_view data);
void write_parameter_status(std::string& out, std::string_view name, std::string_view value);
void write_backend_key_data(std::string& out, std::int32_t process_id, std::int32_t secret_key);
void write_ready_for_query(std::string& out, char status);  // 'I' idle, 'T' in transaction, 'E' failed transaction
void write_negotiate_protocol_version(std::string& out, int newest_minor,
                                      std::span<const std::string> unrecognized_options);

enum class Severity { kError, kFatal, kPanic, kWarning, kNotice, kInfo, kLog, kDebug };
// The non-localized text PostgreSQL puts in the S and V fields.
std::string_view severity_name(Severity s);

struct ErrorFields {
  Severity severity = Severity::kError;
  std::string sqlstate;
  std::string message;
  std::string detail;
  std::string hint;
};
// Fields S, V, C, M, D, H in that order; empty ones are omitted (S and V are always written).
void write_error_response(std::string& out, const ErrorFields& e);
void write_notice_response(std::string& out, const ErrorFields& e);

void write_query(std::string& out, std::string_view sql);
void write_terminate(std::string& out);
void write_sync(std::string& out);

}  // namespace pooler::protocol
