// SCRAM-SHA-256: secrets (PBKDF2, HMAC and SHA-256 from OpenSSL) and the server's half of the exchange.
#include "protocol/scram.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <cassert>
#include <charconv>
#include <optional>
#include <utility>

#include "protocol/base64.h"
#include "protocol/crypto_util.h"

namespace pooler::protocol {
namespace {

using scram_detail::as_view;
using scram_detail::Attribute;
using scram_detail::hmac_sha256;
using scram_detail::is_valid_nonce;
using scram_detail::Key;
using scram_detail::next_attribute;
using scram_detail::random_nonce;
using scram_detail::sha256;
using scram_detail::to_key;

Error bad_secret() { return Error{"28P01", "invalid SCRAM secret"}; }

// Splits `s` at the first `sep`; nullopt if there is none.
std::optional<std::pair<std::string_view, std::string_view>> split_once(std::string_view s, char sep) {
  auto pos = s.find(sep);
  if (pos == std::string_view::npos) return std::nullopt;
  return std::pair{s.substr(0, pos), s.substr(pos + 1)};
}

}  // namespace

bool is_scram_secret(std::string_view s) { return parse_scram_secret(s).has_value(); }

std::expected<ScramSecret, Error> parse_scram_secret(std::string_view s) {
  auto [method, rest] = split_once(s, '$').value_or(std::pair<std::string_view, std::string_view>{});
  if (method != kScramSha256) return std::unexpected(bad_secret());
  auto parts = split_once(rest, '$');
  if (!parts) return std::unexpected(bad_secret());
  auto iter_salt = split_once(parts->first, ':');
  auto keys = split_once(parts->second, ':');
  if (!iter_salt || !keys) return std::unexpected(bad_secret());

  ScramSecret secret;
  auto iter_text = iter_salt->first;
  auto [ptr, ec] = std::from_chars(iter_text.data(), iter_text.data() + iter_text.size(), secret.iterations);
  if (ec != std::errc{} || ptr != iter_text.data() + iter_text.size() || secret.iterations < 1) {
    return std::unexpected(bad_secret());
  }
  auto salt = base64_decode(iter_salt->second);
  auto stored = base64_decode(keys->first);
  auto server = base64_decode(keys->second);
  if (!salt || salt->empty() || !stored || !server) return std::unexpected(bad_secret());
  auto stored_key = to_key(*stored);
  auto server_key = to_key(*server);
  if (!stored_key || !server_key) return std::unexpected(bad_secret());
  secret.salt = std::move(*salt);
  secret.stored_key = *stored_key;
  secret.server_key = *server_key;
  return secret;
}

ScramSecret make_scram_secret(std::string_view password, std::string_view raw_salt, int iterations) {
  Key salted = scram_detail::salted_password(password, raw_salt, iterations);
  ScramSecret secret;
  secret.iterations = iterations;
  secret.salt = std::string(raw_salt);
  secret.stored_key = sha256(hmac_sha256(salted, "Client Key"));
  secret.server_key = hmac_sha256(salted, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  return secret;
}

std::string format_scram_secret(const ScramSecret& s) {
  return fmt::format("{}${}:{}${}:{}", kScramSha256, s.iterations, base64_encode(s.salt),
                     base64_encode(as_view(s.stored_key)), base64_encode(as_view(s.server_key)));
}

ScramServer::ScramServer(ScramSecret secret) : ScramServer(std::move(secret), random_nonce()) {}

ScramServer::ScramServer(ScramSecret secret, std::string server_nonce)
    : secret_(std::move(secret)), server_nonce_(std::move(server_nonce)) {
  assert(is_valid_nonce(server_nonce_));
}

std::unexpected<Error> ScramServer::fail(std::string sqlstate, std::string message) {
  state_ = State::kFailed;
  return std::unexpected(Error{std::move(sqlstate), std::move(message)});
}

std::expected<std::string, Error> ScramServer::handle_client_first(std::string_view client_first) {
  if (state_ != State::kExpectClientFirst) return fail("08P01", "unexpected SCRAM client-first-message");
  auto malformed = [this] { return fail("08P01", "malformed SCRAM message: invalid client-first-message"); };

  // gs2-header = gs2-cbind-flag "," [authzid] ","
  std::string_view in = client_first;
  if (in.starts_with("p=")) {
    return fail("28000", "channel binding is not supported; use SCRAM-SHA-256 without channel binding");
  }
  if (!(in.starts_with("n,") || in.starts_with("y,"))) return malformed();
  in.remove_prefix(2);
  if (in.starts_with("a=")) {
    return fail("0A000", "client uses authorization identity, but it is not supported");
  }
  if (!in.starts_with(",")) return malformed();
  in.remove_prefix(1);
  gs2_header_ = std::string(client_first.substr(0, 3));
  client_first_bare_ = std::string(in);

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  if (in.starts_with("m=")) return fail("0A000", "client requires an unsupported SCRAM extension");
  auto user = next_attribute(in);
  // The user name is ignored, as in PostgreSQL: the one from the startup packet counts (libpq sends "n=").
  if (!user || user->name != 'n') return malformed();
  auto nonce = next_attribute(in);
  if (!nonce || nonce->name != 'r' || !is_valid_nonce(nonce->value)) return malformed();
  while (!in.empty()) {
    // Optional extensions are ignored, but must be well-formed.
    if (!next_attribute(in)) return malformed();
  }
  client_nonce_ = std::string(nonce->value);

  server_first_ = fmt::format("r={}{},s={},i={}", client_nonce_, server_nonce_, base64_encode(secret_.salt),
                              secret_.iterations);
  state_ = State::kExpectClientFinal;
  return server_first_;
}

std::expected<std::string, Error> ScramServer::handle_client_final(std::string_view client_final) {
  if (state_ != State::kExpectClientFinal) return fail("08P01", "unexpected SCRAM client-final-message");
  auto malformed = [this](std::string_view why) {
    return fail("08P01", fmt::format("malformed SCRAM message: {}", why));
  };

  // client-final-message = channel-binding "," nonce ["," extensions] "," proof
  std::string_view in = client_final;
  auto binding = next_attribute(in);
  if (!binding || binding->name != 'c') return malformed("expected channel-binding attribute");
  auto binding_data = base64_decode(binding->value);
  if (!binding_data || *binding_data != gs2_header_) {
    return malformed("unexpected channel-binding data in client-final-message");
  }
  auto nonce = next_attribute(in);
  if (!nonce || nonce->name != 'r') return malformed("expected nonce attribute");
  std::optional<Attribute> proof;
  std::size_t proof_start = 0;
  while (!in.empty()) {
    proof_start = client_final.size() - in.size();
    auto attr = next_attribute(in);
    if (!attr) return malformed("invalid attribute in client-final-message");
    if (attr->name == 'p') {
      if (!in.empty()) return malformed("proof is not the last attribute");
      proof = attr;
    }
  }
  if (!proof) return malformed("missing proof");
  auto proof_bytes = base64_decode(proof->value);
  if (!proof_bytes) return malformed("invalid proof encoding");
  auto client_proof = to_key(*proof_bytes);
  if (!client_proof) return malformed("proof has the wrong length");

  if (nonce->value.size() != client_nonce_.size() + server_nonce_.size() || !nonce->value.starts_with(client_nonce_) ||
      !nonce->value.ends_with(server_nonce_)) {
    return fail("28P01", "password authentication failed");
  }

  // AuthMessage = client-first-message-bare "," server-first-message "," client-final-message-without-proof
  auto without_proof = client_final.substr(0, proof_start - 1);
  std::string auth_message = fmt::format("{},{},{}", client_first_bare_, server_first_, without_proof);

  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); it is right when H(ClientKey) = StoredKey.
  Key client_signature = hmac_sha256(secret_.stored_key, auth_message);
  Key client_key{};
  for (std::size_t i = 0; i < client_key.size(); ++i) client_key[i] = (*client_proof)[i] ^ client_signature[i];
  Key recomputed = sha256(client_key);
  if (CRYPTO_memcmp(recomputed.data(), secret_.stored_key.data(), recomputed.size()) != 0) {
    return fail("28P01", "password authentication failed");
  }
  client_key_ = client_key;
  state_ = State::kAuthenticated;
  Key server_signature = hmac_sha256(secret_.server_key, auth_message);
  return "v=" + base64_encode(as_view(server_signature));
}

}  // namespace pooler::protocol
