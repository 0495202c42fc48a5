// Loopback port helpers: ask the kernel for a free port, and check whether something accepts on one.
#pragma once

#include <string>

namespace pooler::test {

// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read it back, close. Another process may
// take it before we use it, so callers that bind it retry on "address in use".
int free_port();

// True when a TCP connect to host:port succeeds right now (the connection is closed at once).
bool port_accepts(const std::string& host, int port);

}  // namespace pooler::test
