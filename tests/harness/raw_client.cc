// RawClient: blocking socket I/O with poll() deadlines, plus the md5 and SCRAM math a login needs.
#include "tests/harness/raw_client.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace pooler::test {
namespace {

using Clock = std::chrono::steady_clock;

std::uint32_t read_be32(std::string_view bytes, std::size_t at) {
  if (at + 4 > bytes.size()) throw std::runtime_error("message too short for an int32");
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) throw std::runtime_error("EVP_Digest");
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out, &len) == nullptr) {
    throw std::runtime_error("HMAC");
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::string base64_decode(std::string_view text) {
  std::string out(3 * (text.size() / 4) + 3, '\0');
  int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (len < 0) throw std::runtime_error("bad base64 from server");
  std::size_t padding = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) ++padding;
  out.resize(static_cast<std::size_t>(len) - padding);
  return out;
}

// "a=1,b=2" → value of `key`; throws when missing.
std::string scram_attribute(const std::string& message, char key) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t end = message.find(',', pos);
    if (end == std::string::npos) end = message.size();
    if (end - pos >= 2 && message[pos] == key && message[pos + 1] == '=') {
      return message.substr(pos + 2, end - pos - 2);
    }
    pos = end + 1;
  }
  throw std::runtime_error(fmt::format("SCRAM message `{}` lacks `{}=`", message, key));
}

}  // namespace

std::string ErrorFields::get(char code) const {
  auto it = fields.find(code);
  return it != fields.end() ? it->second : "";
}

std::string ErrorFields::describe() const {
  return fmt::format("{} {}: {}", severity(), sqlstate(), message());
}

ErrorFields parse_error_fields(std::string_view body) {
  ErrorFields result;
  std::size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    char code = body[pos++];
    std::size_t end = body.find('\0', pos);
    if (end == std::string_view::npos) end = body.size();
    result.fields[code] = std::string(body.substr(pos, end - pos));
    pos = end + 1;
  }
  return result;
}

namespace wire {

std::string int32(std::uint32_t value) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(value >> 24);
  out[1] = static_cast<char>(value >> 16);
  out[2] = static_cast<char>(value >> 8);
  out[3] = static_cast<char>(value);
  return out;
}

std::string int16(std::uint16_t value) {
  std::string out(2, '\0');
  out[0] = static_cast<char>(value >> 8);
  out[1] = static_cast<char>(value);
  return out;
}

std::string startup_message(const std::vector<std::pair<std::string, std::string>>& parameters,
                            std::uint32_t version) {
  std::string body = int32(version);
  for (const auto& [key, value] : parameters) {
    body += key;
    body += '\0';
    body += value;
    body += '\0';
  }
  body += '\0';
  return int32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

std::string ssl_request() { return int32(8) + int32(80877103); }
std::string gssenc_request() { return int32(8) + int32(80877104); }
std::string cancel_request(std::uint32_t pid, std::uint32_t key) {
  return int32(16) + int32(80877102) + int32(pid) + int32(key);
}

std::string message(char type, std::string_view body) {
  return std::string(1, type) + int32(static_cast<std::uint32_t>(body.size() + 4)) + std::string(body);
}

std::string query(std::string_view sql) { return message('Q', std::string(sql) + '\0'); }
std::string terminate() { return message('X', ""); }

}  // namespace wire

RawClient::RawClient(const std::string& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    throw std::invalid_argument(fmt::format("RawClient: not an IPv4 address: {}", host));
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int saved = errno;
    close();
    throw std::runtime_error(fmt::format("RawClient connect {}:{}: {}", host, port, std::strerror(saved)));
  }
  // Tests send messages split on purpose; Nagle would only add delay between the pieces.
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawClient::~RawClient() { close(); }

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RawClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) return false;
      throw std::runtime_error(fmt::format("RawClient send: {}", std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool RawClient::fill(std::size_t count, Clock::time_point deadline) {
  char chunk[65536];
  while (buffer_.size() < count) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error("RawClient: timed out waiting for data from the server");
    pollfd pfd{fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
    if (ready <= 0) continue;
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0) {
      return false;
    } else if (errno == ECONNRESET) {
      return false;
    } else if (errno != EINTR && errno != EAGAIN) {
      throw std::runtime_error(fmt::format("recv: {}", std::strerror(errno)));
    }
  }
  return true;
}

std::optional<char> RawClient::read_byte(std::chrono::milliseconds timeout) {
  if (!fill(1, Clock::now() + timeout)) return std::nullopt;
  char c = buffer_[0];
  buffer_.erase(0, 1);
  return c;
}

std::optional<BackendMessage> RawClient::read_message(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!fill(5, deadline)) return std::nullopt;
  std::uint32_t length = read_be32(buffer_, 1);
  if (length < 4) throw std::runtime_error(fmt::format("server sent a message with length {}", length));
  if (length > (64u << 20)) throw std::runtime_error(fmt::format("server sent a {} byte message", length));
  if (!fill(1 + length, deadline)) return std::nullopt;
  BackendMessage message{buffer_[0], buffer_.substr(5, length - 4)};
  buffer_.erase(0, 1 + length);
  return message;
}

std::optional<ErrorFields> RawClient::read_until_error(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto message = read_message(std::max(left, std::chrono::milliseconds(1)));
    if (!message) return std::nullopt;
    if (message->type == 'E') return parse_error_fields(message->body);
  }
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout) {
  try {
    return !fill(buffer_.size() + (1u << 30), Clock::now() + timeout);
  } catch (const std::runtime_error&) {
    return false;
  }
}

LoginResult RawClient::login(const std::string& user, const std::string& database, const std::string& password,
                             const std::vector<std::pair<std::string, std::string>>& extra_parameters,
                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::pair<std::string, std::string>> parameters = {{"user", user}, {"database", database}};
  parameters.insert(parameters.end(), extra_parameters.begin(), extra_parameters.end());
  LoginResult result;
  if (!send(wire::startup_message(parameters))) {
    result.eof = true;
    return result;
  }
  ScramClient scram(password);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto message = read_message(std::max(left, std::chrono::milliseconds(1)));
    if (!message) {
      result.eof = true;
      return result;
    }
    switch (message->type) {
      case 'R': {
        std::uint32_t code = read_be32(message->body, 0);
        std::string reply;
        if (code == 0) break;  // AuthenticationOk
        if (code == 3) {       // AuthenticationCleartextPassword
          reply = wire::message('p', password + '\0');
        } else if (code == 5) {  // AuthenticationMD5Password
          std::string salt = message->body.substr(4, 4);
          std::string inner = hex(digest(EVP_md5(), password + user));
          reply = wire::message('p', "md5" + hex(digest(EVP_md5(), inner + salt)) + '\0');
        } else if (code == 10) {  // AuthenticationSASL
          if (message->body.find("SCRAM-SHA-256") == std::string::npos) {
            throw std::runtime_error("server offers no SCRAM-SHA-256");
          }
          std::string first = scram.client_first();
          reply = wire::message('p', std::string("SCRAM-SHA-256") + '\0' +
                                         wire::int32(static_cast<std::uint32_t>(first.size())) + first);
        } else if (code == 11) {  // AuthenticationSASLContinue
          reply = wire::message('p', scram.client_final(message->body.substr(4)));
        } else if (code == 12) {  // AuthenticationSASLFinal
          if (!scram.verify_server_final(message->body.substr(4))) {
            throw std::runtime_error("server's SCRAM signature does not verify");
          }
        } else {
          throw std::runtime_error(fmt::format("unsupported authentication request {}", code));
        }
        if (!reply.empty() && !send(reply)) {
          result.eof = true;
          return result;
        }
        break;
      }
      case 'S': {
        std::size_t split = message->body.find('\0');
        if (split != std::string::npos) {
          std::string value = message->body.substr(split + 1);
          if (!value.empty() && value.back() == '\0') value.pop_back();
          result.parameters[message->body.substr(0, split)] = value;
        }
        break;
      }
      case 'K':
        result.backend_pid = read_be32(message->body, 0);
        result.backend_key = read_be32(message->body, 4);
        break;
      case 'E':
        result.error = parse_error_fields(message->body);
        return result;
      case 'Z':
        result.ready = true;
        return result;
      default:
        break;  // NoticeResponse and anything else a login may carry
    }
  }
}

std::optional<std::vector<BackendMessage>> RawClient::simple_query(const std::string& sql,
                                                                   std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!send(wire::query(sql))) return std::nullopt;
  std::vector<BackendMessage> messages;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto message = read_message(std::max(left, std::chrono::milliseconds(1)));
    if (!message) return std::nullopt;
    messages.push_back(*message);
    if (message->type == 'Z') return messages;
  }
}

ScramClient::ScramClient(std::string password) : password_(std::move(password)) {}

std::string ScramClient::client_first() {
  unsigned char random[18];
  if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("RAND_bytes");
  nonce_ = base64_encode(std::string_view(reinterpret_cast<char*>(random), sizeof random));
  client_first_bare_ = "n=,r=" + nonce_;
  return "n,," + client_first_bare_;
}

std::string ScramClient::client_final(const std::string& server_first) {
  std::string nonce = scram_attribute(server_first, 'r');
  if (!nonce.starts_with(nonce_)) throw std::runtime_error("server nonce does not extend ours");
  std::string salt = base64_decode(scram_attribute(server_first, 's'));
  int iterations = std::stoi(scram_attribute(server_first, 'i'));
  unsigned char salted[32];
  if (PKCS5_PBKDF2_HMAC(password_.data(), static_cast<int>(password_.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                        EVP_sha256(), sizeof salted, salted) != 1) {
    throw std::runtime_error("PBKDF2");
  }
  salted_password_.assign(reinterpret_cast<char*>(salted), sizeof salted);
  std::string client_key = hmac_sha256(salted_password_, "Client Key");
  std::string stored_key = digest(EVP_sha256(), client_key);
  std::string without_proof = "c=biws,r=" + nonce;  // biws = base64("n,,"): no channel binding
  auth_message_ = client_first_bare_ + "," + server_first + "," + without_proof;
  std::string signature = hmac_sha256(stored_key, auth_message_);
  std::string proof = client_key;
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
  return without_proof + ",p=" + base64_encode(proof);
}

bool ScramClient::verify_server_final(const std::string& server_final) const {
  std::string server_key = hmac_sha256(salted_password_, "Server Key");
  std::string expected = base64_encode(hmac_sha256(server_key, auth_message_));
  return scram_attribute(server_final, 'v') == expected;
}

}  // namespace pooler::test
