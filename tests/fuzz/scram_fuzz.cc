// SCRAM-SHA-256, server side, and the encodings under it. The first input byte picks a mode:
//   0  raw: client-first and client-final messages (NUL-separated) fed to a ScramServer holding a fixed secret;
//      whatever happens must be one of the documented answers, and success must mean the password's ClientKey;
//   1  honest client: a client written here from RFC 5802 builds well-formed messages around names, nonces and
//      extensions taken from the input and proves the right password, or tampers with one part of the proof;
//      the server must accept exactly the honest proofs, sign them correctly and recover the ClientKey;
//   2  base64: decode accepts only canonical text (decode then encode gives it back), encode then decode
//      gives any bytes back;
//   3  secrets: parse_scram_secret round-trips through format_scram_secret, and config/ classifies stored
//      passwords exactly as protocol/ will treat them (SCRAM secret, md5 secret, or plain text).
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/password_kind.h"
#include "protocol/base64.h"
#include "protocol/md5_auth.h"
#include "protocol/scram.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace pooler;
using Key = std::array<std::uint8_t, 32>;

constexpr std::string_view kPassword = "pencil";
constexpr std::string_view kSalt = "fuzz-salt-16byte";
constexpr int kIterations = 4096;
constexpr std::string_view kServerNonce = "3rfcNHYJY1ZVvWVs7j";

std::string_view view(const Key& k) { return {reinterpret_cast<const char*>(k.data()), k.size()}; }

Key hmac(const Key& key, std::string_view data) {
  Key out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out.data(), &len);
  FUZZ_CHECK(len == out.size());
  return out;
}

Key sha256(const Key& k) {
  Key out{};
  SHA256(k.data(), k.size(), out.data());
  return out;
}

// The client's side of the secret, derived here with PBKDF2 once and checked against make_scram_secret.
struct ClientSecrets {
  protocol::ScramSecret secret;
  Key salted{};
  Key client_key{};
  Key server_key{};
};

const ClientSecrets& secrets() {
  static const ClientSecrets s = [] {
    ClientSecrets c;
    c.secret = protocol::make_scram_secret(kPassword, kSalt, kIterations);
    if (PKCS5_PBKDF2_HMAC(kPassword.data(), static_cast<int>(kPassword.size()),
                          reinterpret_cast<const unsigned char*>(kSalt.data()), static_cast<int>(kSalt.size()),
                          kIterations, EVP_sha256(), static_cast<int>(c.salted.size()), c.salted.data()) != 1) {
      std::abort();
    }
    c.client_key = hmac(c.salted, "Client Key");
    c.server_key = hmac(c.salted, "Server Key");
    FUZZ_CHECK(sha256(c.client_key) == c.secret.stored_key);
    FUZZ_CHECK(c.server_key == c.secret.server_key);
    return c;
  }();
  return s;
}

bool one_of(const std::string& s, std::initializer_list<std::string_view> options) {
  for (auto o : options) {
    if (s == o) return true;
  }
  return false;
}

// After any failure the exchange is over for good.
void check_dead(protocol::ScramServer& server) {
  FUZZ_CHECK(!server.authenticated());
  auto again = server.handle_client_first("n,,n=,r=abc");
  FUZZ_CHECK(!again && again.error().sqlstate == "08P01");
  auto final_again = server.handle_client_final("c=biws,r=abc,p=AAAA");
  FUZZ_CHECK(!final_again && final_again.error().sqlstate == "08P01");
}

const std::string& expected_server_first_tail() {
  static const std::string tail = std::string(kServerNonce) + ",s=" + protocol::base64_encode(kSalt) +
                                  ",i=" + std::to_string(kIterations);
  return tail;
}

void raw_exchange(fuzz::Input& in) {
  const std::string_view first = in.until_nul();
  const std::string_view final_message = in.rest();
  protocol::ScramServer server(secrets().secret, std::string(kServerNonce));

  auto server_first = server.handle_client_first(first);
  if (!server_first) {
    FUZZ_CHECK(one_of(server_first.error().sqlstate, {"08P01", "0A000", "28000"}));
    check_dead(server);
    return;
  }
  // r=<client nonce><server nonce>,s=<salt>,i=<iterations>
  FUZZ_CHECK(server_first->starts_with("r=") && server_first->ends_with(expected_server_first_tail()));
  const std::string_view client_nonce =
      std::string_view(*server_first).substr(2, server_first->size() - 2 - expected_server_first_tail().size());
  FUZZ_CHECK(!client_nonce.empty() && client_nonce.find(',') == std::string_view::npos);
  FUZZ_CHECK(first.find(std::string(",r=") + std::string(client_nonce)) != std::string_view::npos);
  FUZZ_CHECK(!server.authenticated());

  auto server_final = server.handle_client_final(final_message);
  if (server_final) {
    // Only a proof made from the password passes (the seed corpus has one): the ClientKey it yields is the
    // preimage of StoredKey, and the answer carries a 32-byte signature.
    FUZZ_CHECK(server.authenticated());
    FUZZ_CHECK(server.client_key() == secrets().client_key);
    FUZZ_CHECK(server_final->starts_with("v=") && server_final->size() == 2 + 44);
    return;
  }
  FUZZ_CHECK(one_of(server_final.error().sqlstate, {"08P01", "28P01"}));
  check_dead(server);
}

// Keeps `s` to what an attribute value may hold (no ','), mapping nonce bytes into RFC 5802's printable set.
std::string attribute_value(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ',') out.push_back(c);
  }
  return out;
}
std::string nonce_value(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    char p = static_cast<char>(0x21 + u % (0x7f - 0x21));
    out.push_back(p == ',' ? '~' : p);
  }
  return out.empty() ? "x" : out;
}

void honest_exchange(fuzz::Input& in) {
  const std::uint8_t knobs = in.byte();
  const std::string user = attribute_value(in.until_nul());
  const std::string nonce = nonce_value(in.until_nul());
  const std::string first_extension = attribute_value(in.until_nul());
  const std::string final_extension = attribute_value(in.rest());
  const std::string gs2 = (knobs & 1) != 0 ? "y,," : "n,,";
  const int tamper = (knobs >> 1) & 3;  // 0 honest, 1 wrong proof, 2 wrong nonce, 3 wrong channel binding

  std::string bare = "n=" + user + ",r=" + nonce;
  if ((knobs & 8) != 0) bare += ",e=" + first_extension;
  protocol::ScramServer server(secrets().secret, std::string(kServerNonce));
  auto server_first = server.handle_client_first(gs2 + bare);
  FUZZ_CHECK(server_first.has_value());
  FUZZ_CHECK(*server_first == "r=" + nonce + expected_server_first_tail());

  const std::string combined = nonce + std::string(kServerNonce);
  std::string without_proof = "c=" + protocol::base64_encode(tamper == 3 ? (gs2 == "n,," ? "y,," : "n,,") : gs2) +
                              ",r=" + (tamper == 2 ? combined + "x" : combined);
  if ((knobs & 16) != 0) without_proof += ",f=" + final_extension;
  const std::string auth_message = bare + "," + *server_first + "," + without_proof;
  const ClientSecrets& s = secrets();
  const Key signature = hmac(s.secret.stored_key, auth_message);
  Key proof{};
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = s.client_key[i] ^ signature[i];
  if (tamper == 1) proof[knobs % proof.size()] ^= static_cast<std::uint8_t>(1u << (knobs >> 5));

  auto server_final = server.handle_client_final(without_proof + ",p=" + protocol::base64_encode(view(proof)));
  if (tamper == 0) {
    FUZZ_CHECK(server_final.has_value());
    FUZZ_CHECK(server.authenticated());
    FUZZ_CHECK(*server_final == "v=" + protocol::base64_encode(view(hmac(s.server_key, auth_message))));
    FUZZ_CHECK(server.client_key() == s.client_key);
    // The exchange is over: nothing more is accepted.
    auto again = server.handle_client_final(without_proof + ",p=" + protocol::base64_encode(view(proof)));
    FUZZ_CHECK(!again && again.error().sqlstate == "08P01");
    return;
  }
  FUZZ_CHECK(!server_final);
  FUZZ_CHECK(server_final.error().sqlstate == (tamper == 3 ? "08P01" : "28P01"));
  check_dead(server);
}

void base64(std::string_view text) {
  auto decoded = protocol::base64_decode(text);
  if (decoded) {
    FUZZ_CHECK(decoded->size() == text.size() / 4 * 3 - (text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0));
    FUZZ_CHECK(protocol::base64_encode(*decoded) == text);
  } else {
    FUZZ_CHECK(decoded.error().sqlstate == "08P01");
  }
  const std::string encoded = protocol::base64_encode(text);
  FUZZ_CHECK(encoded.size() == (text.size() + 2) / 3 * 4);
  auto back = protocol::base64_decode(encoded);
  FUZZ_CHECK(back && *back == text);
}

void secret(std::string_view text) {
  auto parsed = protocol::parse_scram_secret(text);
  FUZZ_CHECK(protocol::is_scram_secret(text) == parsed.has_value());
  if (parsed) {
    FUZZ_CHECK(parsed->iterations >= 1 && !parsed->salt.empty());
    const std::string formatted = protocol::format_scram_secret(*parsed);
    auto again = protocol::parse_scram_secret(formatted);
    FUZZ_CHECK(again && again->iterations == parsed->iterations && again->salt == parsed->salt &&
               again->stored_key == parsed->stored_key && again->server_key == parsed->server_key);
  } else {
    FUZZ_CHECK(parsed.error().sqlstate == "28P01");
  }
  // config/ validates [users] passwords with its own reading of the same forms; the daemon then uses
  // protocol/'s. They must agree, or a secret the config accepted would be taken as a plain-text password.
  const auto kind = config::classify_password(text);
  FUZZ_CHECK((kind == config::PasswordKind::kScramSha256) == parsed.has_value());
  FUZZ_CHECK((kind == config::PasswordKind::kMd5) == protocol::is_md5_secret(text));
  FUZZ_CHECK(config::is_malformed_scram_secret(text) == (text.starts_with("SCRAM-SHA-256$") && !parsed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(fuzz::as_view(data, size));
  switch (in.byte() & 3) {
    case 0: raw_exchange(in); break;
    case 1: honest_exchange(in); break;
    case 2: base64(in.rest()); break;
    case 3: secret(in.rest()); break;
  }
  return 0;
}
