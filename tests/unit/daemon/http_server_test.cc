// HttpServer on a real libuv loop (run on a test thread) answering plain blocking sockets: each endpoint's
// status line, headers and body; bad requests; slow, oversized, silent and many concurrent clients.
#include "daemon/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pooler::daemon {
namespace {

using namespace std::chrono_literals;

struct Response {
  std::string status_line;
  std::map<std::string, std::string> headers;
  std::string body;
};

std::optional<Response> parse_response(const std::string& raw) {
  const std::size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  Response r;
  std::size_t pos = raw.find("\r\n");
  r.status_line = raw.substr(0, pos);
  while (pos < end) {
    const std::size_t next = raw.find("\r\n", pos + 2);
    const std::string line = raw.substr(pos + 2, next - pos - 2);
    const std::size_t colon = line.find(": ");
    if (colon != std::string::npos) r.headers[line.substr(0, colon)] = line.substr(colon + 2);
    pos = next;
  }
  r.body = raw.substr(end + 4);
  return r;
}

int connect_to(int port, int family = AF_INET) {
  const int fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc;
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<std::uint16_t>(port));
    a.sin6_addr = in6addr_loopback;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Everything until the server closes (or 5 s pass: then the string ends with "<timeout>").
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return out;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? out + "<timeout>" : out + "<error>";
    out.append(buf, static_cast<std::size_t>(n));
  }
}

class DaemonHttpServer : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}, std::string_view address = "127.0.0.1:0") {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    HttpHandlers h;
    h.metrics = [this] {
      ++scrapes_;
      if (throw_.load()) throw std::runtime_error("boom");
      return std::string("pooler_up 1\n");
    };
    h.ready = [this] { return std::pair{ready_.load(), std::string(ready_.load() ? "ready\n" : "no backend\n")}; };
    server_ = std::make_unique<HttpServer>(&loop_, std::move(h), options);
    auto r = server_->listen(address);
    ASSERT_TRUE(r.has_value()) << r.error();
    port_ = server_->port();
    ASSERT_GT(port_, 0);
    stop_ = UvHandle<uv_async_t>::make();
    ASSERT_EQ(uv_async_init(&loop_, stop_.get(),
                            [](uv_async_t* a) noexcept {
                              auto* self = static_cast<DaemonHttpServer*>(a->data);
                              if (self == nullptr) return;
                              self->server_.reset();
                              self->stop_.reset();
                            }),
              0);
    stop_->data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      uv_async_send(stop_.get());
      thread_.join();
    }
    if (loop_ready_) {
      uv_run(&loop_, UV_RUN_NOWAIT);     // let close callbacks of a server that never ran finish
      EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle leaked";
    }
  }

  // One request on a fresh connection; the whole response.
  std::string exchange(std::string_view request) {
    const int fd = connect_to(port_);
    EXPECT_GE(fd, 0);
    if (fd < 0) return "";
    EXPECT_TRUE(send_all(fd, request));
    std::string out = read_all(fd);
    close(fd);
    return out;
  }

  Response get(std::string_view request) {
    const std::string raw = exchange(request);
    auto r = parse_response(raw);
    EXPECT_TRUE(r.has_value()) << raw;
    return r.value_or(Response{});
  }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  std::unique_ptr<HttpServer> server_;
  UvHandle<uv_async_t> stop_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> scrapes_{0};
  std::atomic<bool> ready_{true};
  std::atomic<bool> throw_{false};
};

// GET /metrics: 200, the Prometheus content type, exact length, Connection: close, the handler's body.
TEST_F(DaemonHttpServer, MetricsGet) {
  start();
  Response r = get("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.headers["Content-Length"], "12");
  EXPECT_EQ(r.headers["Connection"], "close");
  EXPECT_EQ(r.body, "pooler_up 1\n");
  EXPECT_EQ(scrapes_.load(), 1);
}

// HEAD /metrics: the same headers, no body.
TEST_F(DaemonHttpServer, MetricsHead) {
  start();
  Response r = get("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.headers["Content-Length"], "12");
  EXPECT_EQ(r.body, "");
}

// A query string is ignored; HTTP/1.0 and absolute-form targets are understood.
TEST_F(DaemonHttpServer, QueryStringAndHttp10) {
  start();
  EXPECT_EQ(get("GET /metrics?name[]=x HTTP/1.1\r\n\r\n").body, "pooler_up 1\n");
  EXPECT_EQ(get("GET /metrics HTTP/1.0\r\n\r\n").status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(get("GET http://127.0.0.1:9127/healthz HTTP/1.1\r\n\r\n").body, "ok\n");
  EXPECT_EQ(get("\r\nGET /healthz HTTP/1.1\n\n").body, "ok\n");  // leading empty line, bare LF endings
}

// /healthz is always 200 "ok".
TEST_F(DaemonHttpServer, Healthz) {
  start();
  Response r = get("GET /healthz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.headers["Content-Type"], "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "ok\n");
}

// /readyz follows the handler: 200 or 503 with its body.
TEST_F(DaemonHttpServer, Readyz) {
  start();
  Response up = get("GET /readyz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(up.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(up.body, "ready\n");
  ready_ = false;
  Response down = get("GET /readyz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(down.status_line, "HTTP/1.1 503 Service Unavailable");
  EXPECT_EQ(down.headers["Content-Length"], "11");
  EXPECT_EQ(down.body, "no backend\n");
}

// Unknown paths are 404; other methods 405 with Allow.
TEST_F(DaemonHttpServer, NotFoundAndMethodNotAllowed) {
  start();
  EXPECT_EQ(get("GET / HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(get("GET /metricsx HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 404 Not Found");
  Response r = get("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(r.status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(r.headers["Allow"], "GET, HEAD");
  EXPECT_EQ(get("DELETE /healthz HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(scrapes_.load(), 0);
}

// Malformed heads get 400 and the connection closes.
TEST_F(DaemonHttpServer, MalformedIs400) {
  start();
  for (const char* bad : {"garbage\r\n\r\n", "GET /metrics\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n",
                          "GET  /metrics HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n", "GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
                          "GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", "G(T /metrics HTTP/1.1\r\n\r\n"}) {
    Response r = get(bad);
    EXPECT_EQ(r.status_line, "HTTP/1.1 400 Bad Request") << bad;
    EXPECT_EQ(r.headers["Connection"], "close") << bad;
  }
}

// A request head over 8 KiB is refused with 400 even while the client keeps sending.
TEST_F(DaemonHttpServer, OversizedHeadIs400) {
  start();
  const std::string big = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(9000, 'a');
  Response r = get(big);
  EXPECT_EQ(r.status_line, "HTTP/1.1 400 Bad Request");
  // Just over the limit with its terminator is refused too; just under is served.
  const std::string over = "GET /metrics HTTP/1.1\r\nX: " + std::string(8192 - 29, 'a') + "\r\n\r\n";
  ASSERT_EQ(over.size(), 8193u);
  EXPECT_EQ(get(over).status_line, "HTTP/1.1 400 Bad Request");
  const std::string under = over.substr(0, 26) + over.substr(27);  // one "a" less: exactly 8192
  EXPECT_EQ(get(under).status_line, "HTTP/1.1 200 OK");
}

// A request trickling in one byte at a time is answered once complete.
TEST_F(DaemonHttpServer, ByteByByte) {
  start();
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  for (char c : std::string_view("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")) {
    ASSERT_TRUE(send_all(fd, std::string_view(&c, 1)));
    std::this_thread::sleep_for(1ms);
  }
  auto r = parse_response(read_all(fd));
  close(fd);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "pooler_up 1\n");
}

// A client that half-closes right after its request still gets the response.
TEST_F(DaemonHttpServer, HalfCloseAfterRequest) {
  start();
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /healthz HTTP/1.1\r\n\r\n"));
  shutdown(fd, SHUT_WR);
  auto r = parse_response(read_all(fd));
  close(fd);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "ok\n");
}

// A client that sends nothing is closed after the request timeout (10 s by default; shortened here).
TEST_F(DaemonHttpServer, SilentClientTimesOut) {
  EXPECT_EQ(HttpServerOptions{}.request_timeout_ms, 10000u);
  start({.request_timeout_ms = 200});
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(read_all(fd), "");
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 3s);
  close(fd);
}

// A half-sent request is also cut off at the timeout.
TEST_F(DaemonHttpServer, SlowlorisTimesOut) {
  start({.request_timeout_ms = 200});
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\n"));
  EXPECT_EQ(read_all(fd), "");
  close(fd);
}

// A throwing handler yields 500, and the server keeps serving.
TEST_F(DaemonHttpServer, HandlerExceptionIs500) {
  start();
  throw_ = true;
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 500 Internal Server Error");
  throw_ = false;
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 200 OK");
}

// 200 clients connected at once, requests sent on all before any response is read: every one is served.
TEST_F(DaemonHttpServer, ManyConcurrentConnections) {
  start();
  constexpr int kClients = 200;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    const int fd = connect_to(port_);
    ASSERT_GE(fd, 0) << i;
    fds.push_back(fd);
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(send_all(fds[static_cast<std::size_t>(i)], i % 2 ? "GET /metrics HTTP/1.1\r\n\r\n"
                                                               : "GET /healthz HTTP/1.1\r\n\r\n"));
  }
  for (int i = 0; i < kClients; ++i) {
    auto r = parse_response(read_all(fds[static_cast<std::size_t>(i)]));
    close(fds[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->body, i % 2 ? "pooler_up 1\n" : "ok\n") << i;
  }
  EXPECT_EQ(scrapes_.load(), kClients / 2);
}

// Connections beyond max_connections are closed without an answer; the rest are unaffected.
TEST_F(DaemonHttpServer, ConnectionLimit) {
  start({.max_connections = 2});
  const int a = connect_to(port_);
  const int b = connect_to(port_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  std::this_thread::sleep_for(100ms);  // let the loop accept both
  const int c = connect_to(port_);
  ASSERT_GE(c, 0);
  EXPECT_EQ(read_all(c), "");
  close(c);
  ASSERT_TRUE(send_all(a, "GET /healthz HTTP/1.1\r\n\r\n"));
  EXPECT_NE(read_all(a).find("ok\n"), std::string::npos);
  close(a);
  close(b);
}

// Closing the server with a client still connected leaks nothing (TearDown checks uv_loop_close).
TEST_F(DaemonHttpServer, CloseWithOpenConnections) {
  start();
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /met"));
  std::this_thread::sleep_for(50ms);
  uv_async_send(stop_.get());
  thread_.join();
  EXPECT_EQ(read_all(fd), "");
  close(fd);
}

// IPv6 literals in brackets work (skipped where the host has no IPv6 loopback).
TEST_F(DaemonHttpServer, ListensOnIpv6) {
  const int probe = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool have_v6 = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (probe >= 0) close(probe);
  if (!have_v6) GTEST_SKIP() << "no IPv6 loopback";
  start({}, "[::1]:0");
  const int fd = connect_to(port_, AF_INET6);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /healthz HTTP/1.1\r\n\r\n"));
  EXPECT_NE(read_all(fd).find("\r\n\r\nok\n"), std::string::npos);
  close(fd);
}

// Bad addresses and busy ports are reported, not thrown; a second listen() is refused.
TEST_F(DaemonHttpServer, ListenErrors) {
  start();
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    HttpServer s(&loop, {});
    EXPECT_FALSE(s.listen("127.0.0.1").has_value());
    EXPECT_FALSE(s.listen("127.0.0.1:99999").has_value());
    EXPECT_FALSE(s.listen("::1:80").has_value());
    EXPECT_FALSE(s.listen(":80").has_value());
    auto busy = s.listen("127.0.0.1:" + std::to_string(port_));
    ASSERT_FALSE(busy.has_value());
    EXPECT_NE(busy.error().find("address already in use"), std::string::npos) << busy.error();
    ASSERT_TRUE(s.listen("localhost:0").has_value());
    EXPECT_GT(s.port(), 0);
    EXPECT_EQ(s.listen("127.0.0.1:0").error(), "already listening");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace pooler::daemon
