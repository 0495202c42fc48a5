// OpenSSL server context setup for client connections.
#include "daemon/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include <cstring>

namespace pooler::daemon {

namespace {

// TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's (all of them are fine).
constexpr const char* kDefaultCiphers = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL";

// Picks "postgresql" when the client offers it. A client that offers ALPN but not ours is talking some
// other protocol to us: refuse, as PostgreSQL 17 does.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  unsigned int i = 0;
  while (i < inlen) {
    const unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == kAlpnPostgresql.size() && std::memcmp(in + i + 1, kAlpnPostgresql.data(), len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

std::expected<SslCtxPtr, std::string> make_client_tls_context(const config::Tls& tls) {
  if (!tls.enabled()) return SslCtxPtr{};
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return std::unexpected(fmt::format("SSL_CTX_new: {}", openssl_error()));
  SSL_CTX_set_min_proto_version(ctx.get(),
                                tls.min_version == config::TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // No compression (CRIME), no renegotiation (a client could make us spend CPU at will), our cipher order,
  // and no session resumption: PostgreSQL does not resume sessions either, and it keeps a reload simple.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  const std::string& ciphers = tls.ciphers.empty() ? std::string(kDefaultCiphers) : tls.ciphers;
  if (SSL_CTX_set_cipher_list(ctx.get(), ciphers.c_str()) != 1) {
    return std::unexpected(fmt::format("[pooler.tls] ciphers \"{}\": {}", ciphers, openssl_error()));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1) {
    return std::unexpected(fmt::format("[pooler.tls] cert_file \"{}\": {}", tls.cert_file, openssl_error()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return std::unexpected(fmt::format("[pooler.tls] key_file \"{}\": {}", tls.key_file, openssl_error()));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return std::unexpected(fmt::format("[pooler.tls] key_file \"{}\" does not match cert_file \"{}\": {}",
                                       tls.key_file, tls.cert_file, openssl_error()));
  }
  if (!tls.client_tls_ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), tls.client_tls_ca.c_str(), nullptr) != 1) {
      return std::unexpected(
          fmt::format("[pooler.tls] client_tls_ca \"{}\": {}", tls.client_tls_ca, openssl_error()));
    }
    if (!tls.client_tls_crl.empty()) {
      // As PostgreSQL's ssl_crl_file: every certificate of the chain is checked, and a CA without a CRL in
      // the file fails verification, so a list that does not match client_tls_ca is noticed at once.
      X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
      X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
      if (lookup == nullptr || X509_load_crl_file(lookup, tls.client_tls_crl.c_str(), X509_FILETYPE_PEM) <= 0) {
        return std::unexpected(
            fmt::format("[pooler.tls] client_tls_crl \"{}\": {}", tls.client_tls_crl, openssl_error()));
      }
      X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_tls_ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx.get(), names);
    // Ask for a certificate and verify one that is given; a missing one is judged after the handshake
    // (client_tls_mode verify-*, hba method cert), where the client can be told why in an ErrorResponse.
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), &select_alpn, nullptr);
  return ctx;
}

std::optional<std::string> verified_peer_cn(SSL* ssl) {
  if (ssl == nullptr) return std::nullopt;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::optional<std::string> cn;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    cn.emplace();
    X509_NAME* subject = X509_get_subject_name(cert);
    const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      const auto* bytes = reinterpret_cast<const char*>(ASN1_STRING_get0_data(data));
      std::string text(bytes, static_cast<std::size_t>(ASN1_STRING_length(data)));
      // An embedded NUL would let "admin\0.evil" pass as "admin" in C string comparisons: never accept it.
      if (text.find('\0') == std::string::npos) *cn = std::move(text);
    }
  }
  X509_free(cert);
  return cn;
}

bool alpn_is_postgresql(SSL* ssl) {
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  return len == kAlpnPostgresql.size() && std::memcmp(proto, kAlpnPostgresql.data(), len) == 0;
}

}  // namespace pooler::daemon
