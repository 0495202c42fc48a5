// A minimal HTTP/1.1 server on the daemon's libuv loop for the metrics address: GET/HEAD /metrics,
// /healthz and /readyz, one request per connection. Not prometheus-cpp's Exposer, which runs its own
// threads and cannot answer /readyz with 503.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/uv_handle.h"

namespace pooler::daemon {

struct HttpHandlers {
  // The body of /metrics (Prometheus text format). Unset → 404.
  std::function<std::string()> metrics;
  // /readyz: true → 200, false → 503, with the string as body. Unset → always 200 "ready\n".
  std::function<std::pair<bool, std::string>()> ready;
};

struct HttpServerOptions {
  std::size_t max_head_bytes = 8192;         // a longer request head gets 400
  std::uint64_t request_timeout_ms = 10000;  // to deliver the request head, and then to take the response
  std::uint64_t linger_timeout_ms = 2000;    // after the response, to close its end before we drop it
  std::size_t max_connections = 256;         // more at once are closed on accept
};

// Responses always carry Content-Length and `Connection: close`. A handler that throws yields 500.
// Handlers run on the loop thread and must not destroy the server.
class HttpServer {
 public:
  HttpServer(uv_loop_t* loop, HttpHandlers handlers, HttpServerOptions options = {});
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // Binds and listens on "host:port" or "[v6]:port" (an IP literal, or a name resolved now; port 0 picks a
  // free port, see port()). Fails if already listening.
  [[nodiscard]] std::expected<void, std::string> listen(std::string_view host_port);
  // The bound port once listening, else 0.
  [[nodiscard]] int port() const { return port_; }
  // Stops listening and drops every connection at once. listen() may be called again afterwards.
  void close();

  [[nodiscard]] std::size_t connection_count() const { return conns_.size(); }

 private:
  struct Conn;

  static void on_connection(uv_stream_t* server, int status) noexcept;
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_timeout(uv_timer_t* timer) noexcept;
  static void on_written(uv_write_t* req, int status) noexcept;
  static void on_shutdown(uv_shutdown_t* req, int status) noexcept;

  void accept_one();
  void handle_read(Conn& c, ssize_t nread, const uv_buf_t* buf);
  void handle_written(Conn& c, int status);
  // Builds the response for a complete request head.
  std::string respond(std::string_view head);
  void send(Conn& c, std::string response);
  void drop(Conn& c);

  uv_loop_t* loop_;
  HttpHandlers handlers_;
  HttpServerOptions options_;
  UvHandle<uv_tcp_t> listener_;
  int port_ = 0;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
  // Every read lands here first: libuv calls on_read right after on_alloc, so one buffer serves all.
  std::vector<char> read_buf_;
};

}  // namespace pooler::daemon
