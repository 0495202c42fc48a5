// SCRAM-SHA-256, the client's half: the proof from ClientKey, and the check of the server's signature.
#include "protocol/scram_client.h"


#include <fmt/format.h>
#include <openssl/crypto.h>

#include <cassert>
#include <charconv>
#include <utility>

#include "protocol/auth_messages.h"
#include "protocol/base64.h"
#include "protocol/crypto_util.h"

namespace pooler::protocol {
namespace {

using scram_detail::as_view;
using scram_detail::hmac_sha256;
using scram_detail::Key;
using scram_detail::next_attribute;
using scram_detail::sha256;

// base64("n,,"): the gs2-header echoed in client-final, no channel binding.
constexpr std::string_view kChannelBinding = "biws";


}  // namespace

ScramKeys scram_keys_from_password(std::string_view password, std::string_view raw_salt, int iterations) {
  Key salted = scram_detail::salted_password(password, raw_salt, iterations);
  ScramKeys keys;
  keys.client_key = hmac_sha256(salted, "Client Key");
  keys.server_key = hmac_sha256(salted, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  return keys;
}

ScramClient::ScramClient(ScramKeys keys) : ScramClient(keys, scram_detail::random_nonce()) {}

ScramClient::ScramClient(std::string password)
    : ScramClient(std::move(password), scram_detail::random_nonce()) {}

ScramClient::ScramClient(ScramKeys keys, std::string client_nonce)
    : keys_(keys), client_nonce_(std::move(client_nonce)) {
  assert(scram_detail::is_valid_nonce(client_nonce_));
}

ScramClient::ScramClient(std::string password, std::string client_nonce)
    : password_(std::move(password)), client_nonce_(std::move(client_nonce)) {
  assert(scram_detail::is_valid_nonce(client_nonce_));
}

std::unexpected<Error> ScramClient::fail(std::string sqlstate, std::string message) {
  state_ = State::kFailed;
  // Nothing secret is needed once the exchange is over.
  OPENSSL_cleanse(password_.data(), password_.size());
  password_.clear();
  if (keys_) OPENSSL_cleanse(&*keys_, sizeof(ScramKeys));
  return std::unexpected(Error{std::move(sqlstate), std::move(message)});
}

void ScramClient::set_user_name(std::string_view user) {
  assert(state_ == State::kStart);
  // saslname: ',' and '=' would end or garble the attribute.
  user_name_.clear();
  for (char c : user) {
    if (c == ',') {
      user_name_ += "=2C";
    } else if (c == '=') {
      user_name_ += "=3D";
    } else {
      user_name_.push_back(c);
    }
  }
}

std::string ScramClient::client_first() {
  if (state_ != State::kStart) {
    (void)fail("08P01", "SCRAM client-first-message requested twice");
    return {};
  }
  client_first_bare_ = fmt::format("n={},r={}", user_name_, client_nonce_);
  state_ = State::kExpectServerFirst;
  return "n,," + client_first_bare_;
}

std::expected<std::string, Error> ScramClient::handle_server_first(std::string_view server_first) {
  if (state_ != State::kExpectServerFirst) return fail("08P01", "unexpected SCRAM server-first-message");
  auto malformed = [this](std::string_view why) {
    return fail("08P01", fmt::format("malformed SCRAM server-first-message: {}", why));
  };

  // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
  std::string_view in = server_first;
  if (in.starts_with("m=")) return fail("08P01", "server requires an unsupported SCRAM extension");
  auto nonce = next_attribute(in);
  if (!nonce || nonce->name != 'r') return malformed("expected nonce attribute");
  // Our nonce first, then the server's own part: a server that only echoes ours could replay an old exchange.
  if (!scram_detail::is_valid_nonce(nonce->value) || !nonce->value.starts_with(client_nonce_) ||
      nonce->value.size() <= client_nonce_.size()) {
    return malformed("server nonce does not extend the client nonce");
  }
  auto salt_attr = next_attribute(in);
  if (!salt_attr || salt_attr->name != 's') return malformed("expected salt attribute");
  auto salt = base64_decode(salt_attr->value);
  if (!salt || salt->empty()) return malformed("invalid salt");
  auto iter_attr = next_attribute(in);
  if (!iter_attr || iter_attr->name != 'i') return malformed("expected iteration count attribute");
  int iterations = 0;
  auto text = iter_attr->value;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), iterations);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || iterations < 1) {
    return malformed("iteration count is not a positive integer");
  }
  while (!in.empty()) {
    // Extensions we do not know are ignored, but must be well-formed.
    if (!next_attribute(in)) return malformed("invalid attribute");
  }

  if (!keys_) {
    if (iterations > max_iterations_) {
      return fail("08P01", fmt::format("server asks for {} SCRAM iterations, more than the limit of {}", iterations,
                                       max_iterations_));
    }
    keys_ = scram_keys_from_password(password_, *salt, iterations);
    OPENSSL_cleanse(password_.data(), password_.size());
    password_.clear();
  }

  std::string without_proof = fmt::format("c={},r={}", kChannelBinding, nonce->value);
  auth_message_ = fmt::format("{},{},{}", client_first_bare_, server_first, without_proof);

  // ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage), StoredKey = H(ClientKey).
  Key client_signature = hmac_sha256(sha256(keys_->client_key), auth_message_);
  Key proof{};
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = keys_->client_key[i] ^ client_signature[i];
  state_ = State::kExpectServerFinal;
  return without_proof + ",p=" + base64_encode(as_view(proof));
}

std::expected<void, Error> ScramClient::handle_server_final(std::string_view server_final) {
  if (state_ != State::kExpectServerFinal) return fail("08P01", "unexpected SCRAM server-final-message");
  auto malformed = [this](std::string_view why) {
    return fail("08P01", fmt::format("malformed SCRAM server-final-message: {}", why));
  };

  // server-final-message = (server-error / verifier) ["," extensions]
  std::string_view in = server_final;
  auto attr = next_attribute(in);
  if (attr && attr->name == 'e') {
    return fail("28P01", fmt::format("server refused SCRAM authentication: {}", printable_excerpt(attr->value, 200)));
  }
  if (!attr || attr->name != 'v') return malformed("expected verifier attribute");
  while (!in.empty()) {
    if (!next_attribute(in)) return malformed("invalid attribute");
  }
  auto signature = base64_decode(attr->value);
  if (!signature) return malformed("invalid signature encoding");
  Key expected = hmac_sha256(keys_->server_key, auth_message_);
  if (signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return fail("28P01", "server signature mismatch: the server does not hold the SCRAM secret logged in against");
  }
  state_ = State::kDone;
  return {};
}

}  // namespace pooler::protocol
