// Loopback port helpers: ask the kernel for a free port, and check whether something accepts on one.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace pooler::test {

// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read it back, close. Another process may
// take it before we use it, so callers that bind it retry on "address in use".
int free_port();

// True when a TCP connect to host:port succeeds right now (the connection is closed at once).
bool port_accepts(const std::string& host, int port);

struct HttpResponse {
  int status = 0;
  std::string body;
};

// One HTTP/1.1 GET to 127.0.0.1:port over a fresh connection (Connection: close), read to EOF. nullopt when
// nothing accepts on the port; throws when the peer accepts but does not answer within `timeout`, or the
// status line is malformed.
std::optional<HttpResponse> http_get(int port, const std::string& path,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace pooler::test
