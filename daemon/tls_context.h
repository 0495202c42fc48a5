// TLS towards clients: the OpenSSL server context built from [pooler.tls], and what a finished handshake
// tells about the client's certificate. Sessions hold their own reference to the context they were made
// from, so a reload can swap in a new one without touching connected clients.
#pragma once

#include <openssl/ssl.h>

#include <expected>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"

namespace pooler::daemon {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// The ALPN protocol name PostgreSQL 17 clients offer (and require for direct TLS).
inline constexpr std::string_view kAlpnPostgresql = "postgresql";

// Loads the certificate, key and (optionally) the client CA; nullptr (no error) when client TLS is off.
// The error names the file and OpenSSL's reason.
[[nodiscard]] std::expected<SslCtxPtr, std::string> make_client_tls_context(const config::Tls& tls);

// After the handshake: nullopt unless the client presented a certificate that verified against
// client_tls_ca; then its subject CN ("" when it has none, or one with an embedded NUL).
[[nodiscard]] std::optional<std::string> verified_peer_cn(SSL* ssl);

// Whether the handshake agreed on ALPN "postgresql".
[[nodiscard]] bool alpn_is_postgresql(SSL* ssl);

// The first queued OpenSSL error as text (and the queue cleared), for logs.
[[nodiscard]] std::string openssl_error();

}  // namespace pooler::daemon
