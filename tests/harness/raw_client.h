// A deliberately dumb PostgreSQL wire client over a plain socket, for tests that must send what libpq never
// would (garbage, bad lengths, version 2.0, half messages) and read exactly what comes back.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pooler::test {

using namespace std::chrono_literals;

// One backend message: its type byte and its body (without the type and length).
struct BackendMessage {
  char type = 0;
  std::string body;
};

// The fields of an ErrorResponse or NoticeResponse, keyed by field code ('S', 'C', 'M', ...).
struct ErrorFields {
  std::map<char, std::string> fields;

  std::string sqlstate() const { return get('C'); }
  std::string severity() const { return get('S'); }
  std::string message() const { return get('M'); }
  std::string get(char code) const;
  std::string describe() const;
};

ErrorFields parse_error_fields(std::string_view body);

// Frontend message builders, byte-exact as in the protocol docs.
namespace wire {
std::string int32(std::uint32_t value);
std::string int16(std::uint16_t value);
inline constexpr std::uint32_t kProtocol3 = 196608;  // 3.0
std::string startup_message(const std::vector<std::pair<std::string, std::string>>& parameters,
                            std::uint32_t version = kProtocol3);
std::string ssl_request();
std::string gssenc_request();
std::string cancel_request(std::uint32_t pid, std::uint32_t key);
// A regular message: type byte, length (counting itself), body.
std::string message(char type, std::string_view body);
std::string query(std::string_view sql);
std::string terminate();
}  // namespace wire

struct LoginResult {
  bool ready = false;  // ReadyForQuery arrived
  std::optional<ErrorFields> error;
  bool eof = false;  // the server closed before ReadyForQuery or an error
  std::map<std::string, std::string> parameters;
  std::uint32_t backend_pid = 0;
  std::uint32_t backend_key = 0;
};

class RawClient {
 public:
  // Connects over TCP; throws std::runtime_error when the connect fails.
  RawClient(const std::string& host, int port);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Sends all bytes; false when the peer already closed (EPIPE / ECONNRESET). Never raises SIGPIPE.
  bool send(std::string_view bytes);
  // One byte (the answer to SSLRequest / GSSENCRequest); nullopt on EOF. Throws on timeout.
  std::optional<char> read_byte(std::chrono::milliseconds timeout = 10s);
  // One complete message; nullopt on EOF or reset. Throws on timeout or a length field below 4.
  std::optional<BackendMessage> read_message(std::chrono::milliseconds timeout = 10s);
  // Reads messages until an ErrorResponse (returned) or EOF (nullopt); throws on timeout.
  std::optional<ErrorFields> read_until_error(std::chrono::milliseconds timeout = 10s);
  // Discards input until EOF; true when the peer closed within the timeout.
  bool wait_closed(std::chrono::milliseconds timeout = 10s);

  // Startup plus authentication (trust, cleartext, md5, SCRAM-SHA-256), then reads until ReadyForQuery,
  // an ErrorResponse, or EOF.
  LoginResult login(const std::string& user, const std::string& database, const std::string& password,
                    const std::vector<std::pair<std::string, std::string>>& extra_parameters = {},
                    std::chrono::milliseconds timeout = 20s);
  // Sends a simple Query and collects messages up to ReadyForQuery; nullopt on EOF.
  std::optional<std::vector<BackendMessage>> simple_query(const std::string& sql,
                                                          std::chrono::milliseconds timeout = 20s);

  // Half-close (we send no more) and full close.
  void shutdown_write();
  void close();
  int fd() const { return fd_; }

 private:
  // Fills buffer_ until it holds `count` bytes; false on EOF or reset.
  bool fill(std::size_t count, std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;  // received, not yet consumed
};

// Client side of SCRAM-SHA-256 (RFC 5802/7677, no channel binding), exposed for unit-style checks.
class ScramClient {
 public:
  explicit ScramClient(std::string password);
  // "n,,n=,r=<nonce>" as libpq sends it: PostgreSQL takes the user from the startup packet.
  std::string client_first();
  // Given server-first, returns client-final (with the proof). Throws on a malformed message.
  std::string client_final(const std::string& server_first);
  // Checks the server's signature in server-final.
  bool verify_server_final(const std::string& server_final) const;

 private:
  std::string password_;
  std::string nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
  std::string salted_password_;
};

}  // namespace pooler::test
