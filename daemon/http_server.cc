// The metrics HTTP server: each connection reads one request head, gets one response, then half-closes and
// drains ("lingering close") so the peer sees the whole response even if it sent more than we read.
#include "daemon/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <optional>

namespace pooler::daemon {

namespace {

constexpr int kBacklog = 128;

// A connection's life: kReading (until the head is complete) → kWriting (the response is in flight) →
// kLingering (our side is shut down; we discard input until the peer closes or the linger timer fires).
// A connection leaves any phase on EOF, error or timeout by being dropped.
enum class Phase { kReading, kWriting, kLingering };

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

std::string make_response(int status, std::string_view content_type, std::string_view body, bool head_only,
                          std::string_view extra_headers = {}) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n{}\r\n",
      status, reason_phrase(status), content_type, body.size(), extra_headers);
  if (!head_only) out += body;
  return out;
}

std::string error_response(int status, bool head_only = false, std::string_view extra_headers = {}) {
  std::string body(reason_phrase(status));
  for (char& c : body) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  body += '\n';
  return make_response(status, kTextPlain, body, head_only, extra_headers);
}

// The end of the request head (just past the empty line), or npos. Lines end in CRLF or, leniently, LF.
std::size_t head_end(std::string_view s, std::size_t from) {
  for (std::size_t i = s.find('\n', from); i != std::string_view::npos; i = s.find('\n', i + 1)) {
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::vector<std::string_view> split_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const std::size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    head.remove_prefix(nl + 1);
  }
  return lines;
}

struct Request {
  std::string_view method;
  std::string_view path;  // without query or fragment
};

// Validates the request line and header syntax; nullopt means 400.
std::optional<Request> parse_head(std::string_view head) {
  std::vector<std::string_view> lines = split_lines(head);
  std::size_t i = 0;
  while (i < lines.size() && lines[i].empty()) ++i;  // RFC 9112 2.2: ignore empty lines before the request
  if (i == lines.size()) return std::nullopt;
  const std::string_view line = lines[i++];

  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return std::nullopt;
  Request r{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1)};
  const std::string_view version = line.substr(sp2 + 1);
  if (r.method.empty() || !std::all_of(r.method.begin(), r.method.end(), is_tchar)) return std::nullopt;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;

  std::string_view target = r.path;
  for (std::string_view scheme : {"http://", "https://"}) {  // absolute-form: keep the path
    if (target.starts_with(scheme)) {
      target.remove_prefix(scheme.size());
      const std::size_t slash = target.find('/');
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  if (target.empty() || (target[0] != '/' && target != "*")) return std::nullopt;
  if (std::any_of(target.begin(), target.end(), [](char c) { return static_cast<unsigned char>(c) <= ' '; })) {
    return std::nullopt;
  }
  r.path = target.substr(0, target.find_first_of("?#"));

  for (; i < lines.size(); ++i) {
    const std::string_view h = lines[i];
    if (h.empty()) break;
    const std::size_t colon = h.find(':');
    // No name, whitespace before the colon, or an obsolete folded line: all rejected by RFC 9112.
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    if (!std::all_of(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(colon), is_tchar)) return std::nullopt;
  }
  return r;
}

// "host:port" or "[v6]:port", port 0..65535.
std::expected<std::pair<std::string, int>, std::string> split_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::unexpected(fmt::format("expected \"[address]:port\", got \"{}\"", text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return std::unexpected(fmt::format("expected \"host:port\" (IPv6 as \"[address]:port\"), got \"{}\"", text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  int value = -1;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc{} || ptr != port.data() + port.size() || value < 0 ||
      value > 65535) {
    return std::unexpected(fmt::format("expected \"host:port\" with a port from 0 to 65535, got \"{}\"", text));
  }
  return std::pair{std::string(host), value};
}

}  // namespace

struct HttpServer::Conn {
  HttpServer* server = nullptr;
  UvHandle<uv_tcp_t> tcp;
  UvHandle<uv_timer_t> timer;
  std::string head;
  Phase phase = Phase::kReading;
  bool peer_eof = false;  // the peer half-closed; after our response there is nothing to linger for
};

HttpServer::HttpServer(uv_loop_t* loop, HttpHandlers handlers, HttpServerOptions options)
    : loop_(loop), handlers_(std::move(handlers)), options_(options), read_buf_(64 * 1024) {}

HttpServer::~HttpServer() { close(); }

std::expected<void, std::string> HttpServer::listen(std::string_view host_port) {
  if (listener_) return std::unexpected(std::string("already listening"));
  auto hp = split_host_port(host_port);
  if (!hp) return std::unexpected(hp.error());
  const auto& [host, port] = *hp;

  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    // A name: resolved once, synchronously (no callback), as this runs at start-up.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    uv_getaddrinfo_t req{};
    const std::string service = std::to_string(port);
    if (int rc = uv_getaddrinfo(loop_, &req, nullptr, host.c_str(), service.c_str(), &hints); rc != 0) {
      return std::unexpected(fmt::format("cannot resolve \"{}\": {}", host, uv_strerror(rc)));
    }
    std::memcpy(&addr, req.addrinfo->ai_addr, std::min<std::size_t>(req.addrinfo->ai_addrlen, sizeof addr));
    uv_freeaddrinfo(req.addrinfo);
  }

  auto l = UvHandle<uv_tcp_t>::make();
  if (int rc = uv_tcp_init(loop_, l.get()); rc != 0) {
    l.abandon();
    return std::unexpected(fmt::format("cannot create a socket: {}", uv_strerror(rc)));
  }
  l->data = this;
  int rc = uv_tcp_bind(l.get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(l.get()), kBacklog, &HttpServer::on_connection);
  if (rc != 0) return std::unexpected(fmt::format("cannot listen on {}: {}", host_port, uv_strerror(rc)));

  sockaddr_storage bound{};
  int len = sizeof bound;
  if (int r = uv_tcp_getsockname(l.get(), reinterpret_cast<sockaddr*>(&bound), &len); r != 0) {
    return std::unexpected(fmt::format("cannot read the bound address: {}", uv_strerror(r)));
  }
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listener_ = std::move(l);
  return {};
}

void HttpServer::close() {
  listener_.reset();
  port_ = 0;
  conns_.clear();  // each Conn's handles close themselves; queued callbacks see data == nullptr
}

void HttpServer::on_connection(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<HttpServer*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("event=metrics_accept_failed error=\"{}\"", uv_strerror(status));
    return;
  }
  try {
    self->accept_one();
  } catch (const std::exception& e) {
    spdlog::error("event=metrics_accept_failed error=\"{}\"", e.what());
  }
}

void HttpServer::accept_one() {
  auto owned = std::make_unique<Conn>();
  Conn& c = *owned;
  c.server = this;
  c.tcp = UvHandle<uv_tcp_t>::make();
  if (uv_tcp_init(loop_, c.tcp.get()) != 0) {
    c.tcp.abandon();
    return;
  }
  c.tcp->data = &c;
  // Accept even when over the limit, so the pending connection leaves the backlog; then drop it.
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()), reinterpret_cast<uv_stream_t*>(c.tcp.get())) != 0 ||
      conns_.size() >= options_.max_connections) {
    return;  // `owned` closes the handle
  }
  c.timer = UvHandle<uv_timer_t>::make();
  if (uv_timer_init(loop_, c.timer.get()) != 0) {
    c.timer.abandon();
    return;
  }
  c.timer->data = &c;
  uv_tcp_nodelay(c.tcp.get(), 1);
  if (uv_timer_start(c.timer.get(), &HttpServer::on_timeout, options_.request_timeout_ms, 0) != 0 ||
      uv_read_start(reinterpret_cast<uv_stream_t*>(c.tcp.get()), &HttpServer::on_alloc, &HttpServer::on_read) != 0) {
    return;
  }
  conns_.emplace(&c, std::move(owned));
}

void HttpServer::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) noexcept {
  auto* c = static_cast<Conn*>(handle->data);
  if (c == nullptr) {
    *buf = uv_buf_init(nullptr, 0);  // libuv reports UV_ENOBUFS to on_read, which ignores closed handles
    return;
  }
  *buf = uv_buf_init(c->server->read_buf_.data(), static_cast<unsigned>(c->server->read_buf_.size()));
}

void HttpServer::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* c = static_cast<Conn*>(stream->data);
  if (c == nullptr) return;
  HttpServer* self = c->server;
  try {
    self->handle_read(*c, nread, buf);
  } catch (const std::exception& e) {
    spdlog::error("event=metrics_request_failed error=\"{}\"", e.what());
    self->drop(*c);
  }
}

void HttpServer::handle_read(Conn& c, ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    if (nread == UV_EOF && c.phase == Phase::kWriting) {
      // The peer half-closed after its request (e.g. `nc -N`): finish the response, then drop.
      c.peer_eof = true;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(c.tcp.get()));
      return;
    }
    drop(c);
    return;
  }
  if (c.phase != Phase::kReading) return;  // anything after the head is ignored

  const std::size_t before = c.head.size();
  c.head.append(buf->base, static_cast<std::size_t>(nread));
  const std::size_t end = head_end(c.head, before >= 2 ? before - 2 : 0);
  if (end == std::string::npos) {
    if (c.head.size() > options_.max_head_bytes) send(c, error_response(400));
    return;
  }
  if (end > options_.max_head_bytes) {
    send(c, error_response(400));
    return;
  }
  send(c, respond(std::string_view(c.head).substr(0, end)));
}

std::string HttpServer::respond(std::string_view head) {
  const std::optional<Request> r = parse_head(head);
  if (!r) return error_response(400);
  const bool head_only = r->method == "HEAD";
  if (r->method != "GET" && !head_only) return error_response(405, false, "Allow: GET, HEAD\r\n");

  try {
    if (r->path == "/metrics" && handlers_.metrics) {
      return make_response(200, kPrometheusText, handlers_.metrics(), head_only);
    }
    if (r->path == "/healthz") return make_response(200, kTextPlain, "ok\n", head_only);
    if (r->path == "/readyz") {
      if (!handlers_.ready) return make_response(200, kTextPlain, "ready\n", head_only);
      auto [ready, body] = handlers_.ready();
      return make_response(ready ? 200 : 503, kTextPlain, body, head_only);
    }
  } catch (const std::exception& e) {
    spdlog::error("event=metrics_handler_failed path={} error=\"{}\"", r->path, e.what());
    return error_response(500, head_only);
  }
  return error_response(404, head_only);
}

void HttpServer::send(Conn& c, std::string response) {
  c.phase = Phase::kWriting;
  c.head.clear();
  c.head.shrink_to_fit();
  // A slow reader gets the same allowance for the response as for the request.
  uv_timer_start(c.timer.get(), &HttpServer::on_timeout, options_.request_timeout_ms, 0);
  auto* w = new WriteReq{};
  w->data = std::move(response);
  const uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(c.tcp.get()), &b, 1, &HttpServer::on_written);
      rc != 0) {
    delete w;
    drop(c);
  }
}

void HttpServer::on_written(uv_write_t* req, int status) noexcept {
  // The stream outlives this callback even when closing (libuv cancels writes before the close callback).
  auto* c = static_cast<Conn*>(req->handle->data);
  delete reinterpret_cast<WriteReq*>(req);  // req is WriteReq's first member
  if (c == nullptr) return;
  c->server->handle_written(*c, status);
}

void HttpServer::handle_written(Conn& c, int status) {
  if (status < 0 || c.peer_eof) {
    drop(c);
    return;
  }
  c.phase = Phase::kLingering;
  auto* req = new uv_shutdown_t{};
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(c.tcp.get()), &HttpServer::on_shutdown) != 0) {
    delete req;
    drop(c);
    return;
  }
  uv_timer_start(c.timer.get(), &HttpServer::on_timeout, options_.linger_timeout_ms, 0);
}

void HttpServer::on_shutdown(uv_shutdown_t* req, int status) noexcept {
  auto* c = static_cast<Conn*>(req->handle->data);
  delete req;
  if (c != nullptr && status < 0) c->server->drop(*c);
}

void HttpServer::on_timeout(uv_timer_t* timer) noexcept {
  auto* c = static_cast<Conn*>(timer->data);
  if (c == nullptr) return;
  c->server->drop(*c);
}

void HttpServer::drop(Conn& c) { conns_.erase(&c); }

}  // namespace pooler::daemon
