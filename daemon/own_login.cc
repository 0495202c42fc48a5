// OwnLogin: a non-blocking connect, libpq's sslmode negotiation, and protocol::BackendLogin over the socket.
#include "daemon/own_login.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "daemon/tls_context.h"
#include "protocol/writer.h"

namespace pooler::daemon {

namespace {

constexpr std::int32_t kSslRequestCode = 80877103;
constexpr std::int32_t kCancelRequestCode = 80877102;

std::string address_text(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_UNIX) {
    return reinterpret_cast<const sockaddr_un*>(&a)->sun_path;
  }
  return buf;
}

bool is_unix(const OwnLoginTarget& t) { return t.host.starts_with('/'); }

const std::string* find_param(const protocol::BackendLogin& login, std::string_view name) {
  for (const auto& [k, v] : login.params()) {
    if (k == name) return &v;
  }
  return nullptr;
}

}  // namespace

std::string send_cancel_request(const CancelTarget& target) {
  const int fd = ::socket(target.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fmt::format("socket: {}", std::strerror(errno));
  // Bounded waits: a cancel is best effort, and this thread is one of libuv's few pool threads.
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string error;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&target.addr), target.addr_len) != 0) {
    error = fmt::format("connect: {}", std::strerror(errno));
  } else {
    std::string packet;
    protocol::append_int32(packet, 16);
    protocol::append_int32(packet, kCancelRequestCode);
    protocol::append_int32(packet, target.pid);
    protocol::append_int32(packet, target.key);
    if (::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(packet.size())) {
      error = fmt::format("send: {}", std::strerror(errno));
    } else {
      // The server closes the connection once it has signalled the backend (as libpq's PQcancel waits).
      char sink[64];
      while (::recv(fd, sink, sizeof sink, 0) > 0) {
      }
    }
  }
  ::close(fd);
  return error;
}

OwnLogin::OwnLogin(OwnLoginTarget target) : target_(std::move(target)) {}

OwnLogin::~OwnLogin() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  close_fd();
}

void OwnLogin::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void OwnLogin::shutdown_tls() {
  if (ssl_ != nullptr && fd_ >= 0) {
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

std::string OwnLogin::host_label() const { return fmt::format("{}:{}", target_.host, target_.port); }

CancelTarget OwnLogin::cancel_target() const {
  CancelTarget t;
  if (current_addr_ < addrs_.size()) {
    t.addr = addrs_[current_addr_];
    t.addr_len = addr_lens_[current_addr_];
  }
  if (login_) {
    t.pid = login_->backend_pid();
    t.key = login_->cancel_key();
  }
  return t;
}

OwnLogin::Step OwnLogin::fail(std::string message) {
  phase_ = Phase::kFailed;
  error_ = std::move(message);
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  close_fd();
  return Step::kFailed;
}

OwnLogin::Step OwnLogin::start() {
  if (is_unix(target_)) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    const std::string path = fmt::format("{}/.s.PGSQL.{}", target_.host, target_.port);
    if (path.size() >= sizeof un.sun_path) return fail(fmt::format("unix socket path \"{}\" is too long", path));
    std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
    sockaddr_storage ss{};
    std::memcpy(&ss, &un, sizeof un);
    addrs_.push_back(ss);
    addr_lens_.push_back(static_cast<socklen_t>(sizeof un));
  } else {
    // Blocking, as libpq's own name lookup in PQconnectStart is; hosts are usually addresses or in
    // /etc/hosts, and this runs only when a pool opens a connection.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(target_.port);
    const int rc = ::getaddrinfo(target_.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
      return fail(fmt::format("could not translate host name \"{}\" to address: {}", target_.host,
                              gai_strerror(rc)));
    }
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
      addrs_.push_back(ss);
      addr_lens_.push_back(ai->ai_addrlen);
    }
    ::freeaddrinfo(res);
  }
  return connect_next();
}

void OwnLogin::note_connect_error(const std::string& what) {
  if (!connect_errors_.empty()) connect_errors_ += "; ";
  connect_errors_ += what;
}

OwnLogin::Step OwnLogin::connect_next() {
  while (next_addr_ < addrs_.size()) {
    current_addr_ = next_addr_++;
    const sockaddr_storage& addr = addrs_[current_addr_];
    close_fd();
    fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      note_connect_error(fmt::format("socket: {}", std::strerror(errno)));
      continue;
    }
    if (addr.ss_family != AF_UNIX) {
      const int one = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (target_.keepalive_idle_s > 0) {
        // As libpq's keepalives settings in server_params: idle, a third of it between probes, 3 probes.
        const int idle = target_.keepalive_idle_s;
        const int interval = std::max(1, idle / 3);
        const int count = 3;
        setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
      }
    }
    int rc = 0;
    do {
      rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), addr_lens_[current_addr_]);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return after_connect();
    if (errno == EINPROGRESS || errno == EAGAIN) {
      phase_ = Phase::kConnecting;
      return Step::kWantWrite;
    }
    note_connect_error(fmt::format("{}: {}", address_text(addr), std::strerror(errno)));
  }
  return fail(fmt::format("connection to server at \"{}\", port {} failed: {}", target_.host, target_.port,
                          connect_errors_.empty() ? "no address" : connect_errors_));
}

OwnLogin::Step OwnLogin::resume() {
  if (phase_ == Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return Step::kWantWrite;
    if (err != 0) {
      note_connect_error(fmt::format("{}: {}", address_text(addrs_[current_addr_]), std::strerror(err)));
      return connect_next();
    }
    return after_connect();
  }
  if (phase_ == Phase::kDone) return Step::kDone;
  if (phase_ == Phase::kFailed) return Step::kFailed;
  return run();
}

OwnLogin::Step OwnLogin::after_connect() {
  // libpq never uses TLS over a unix socket; "allow" tries without TLS first, which is all we do.
  const bool want_tls = !is_unix(target_) && target_.sslmode != "disable" && target_.sslmode != "allow";
  if (want_tls) {
    out_.clear();
    protocol::append_int32(out_, 8);
    protocol::append_int32(out_, kSslRequestCode);
    phase_ = Phase::kSslRequest;
  } else {
    begin_login();
  }
  return run();
}

void OwnLogin::begin_login() {
  std::vector<std::pair<std::string, std::string>> startup = {{"user", target_.user}, {"database", target_.dbname}};
  if (!target_.application_name.empty()) startup.emplace_back("application_name", target_.application_name);
  login_.emplace(std::move(startup), target_.credentials);
  out_ = login_->start();
  phase_ = Phase::kLogin;
}

OwnLogin::Step OwnLogin::start_tls() {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) return fail(fmt::format("SSL_CTX_new: {}", openssl_error()));
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx_, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  const bool verify = target_.sslmode == "verify-ca" || target_.sslmode == "verify-full";
  if (verify) {
    // libpq's default root certificate location is ~/.postgresql/root.crt; the pooler asks for it explicitly.
    if (target_.sslrootcert.empty()) {
      return fail(fmt::format("sslmode {} needs sslrootcert: no root certificate to verify the server with",
                              target_.sslmode));
    }
    if (SSL_CTX_load_verify_locations(ctx_, target_.sslrootcert.c_str(), nullptr) != 1) {
      return fail(fmt::format("could not read root certificate file \"{}\": {}", target_.sslrootcert,
                              openssl_error()));
    }
    if (!target_.sslcrl.empty()) {
      X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
      if (X509_STORE_load_file(store, target_.sslcrl.c_str()) != 1) {
        return fail(fmt::format("could not read SSL certificate revocation list \"{}\": {}", target_.sslcrl,
                                openssl_error()));
      }
      X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (!target_.sslcert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, target_.sslcert.c_str()) != 1) {
      return fail(fmt::format("could not load client certificate \"{}\": {}", target_.sslcert, openssl_error()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx_, target_.sslkey.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail(fmt::format("could not load client key \"{}\": {}", target_.sslkey, openssl_error()));
    }
  }
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) return fail(fmt::format("SSL_new: {}", openssl_error()));
  SSL_set_connect_state(ssl_);
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // SNI as libpq sends it (for names, not addresses), and verify-full's host name check.
  in6_addr probe{};
  const bool literal = inet_pton(AF_INET, target_.host.c_str(), &probe) == 1 ||
                       inet_pton(AF_INET6, target_.host.c_str(), &probe) == 1;
  if (!literal) SSL_set_tlsext_host_name(ssl_, target_.host.c_str());
  if (target_.sslmode == "verify-full") {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    const int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, target_.host.c_str())
                           : X509_VERIFY_PARAM_set1_host(param, target_.host.c_str(), 0);
    if (ok != 1) return fail(fmt::format("cannot verify server host name \"{}\"", target_.host));
  }
  phase_ = Phase::kHandshake;
  return run();
}

bool OwnLogin::flush() {
  while (!out_.empty()) {
    ssize_t n = 0;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int w = SSL_write(ssl_, out_.data(), static_cast<int>(out_.size()));
      if (w <= 0) {
        const int e = SSL_get_error(ssl_, w);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return true;
        error_ = fmt::format("write to server failed: {}", openssl_error());
        return false;
      }
      n = w;
    } else {
      n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        error_ = fmt::format("write to server failed: {}", std::strerror(errno));
        return false;
      }
    }
    out_.erase(0, static_cast<std::size_t>(n));
  }
  return true;
}

OwnLogin::Step OwnLogin::run() {
  for (;;) {
    switch (phase_) {
      case Phase::kConnecting:
        return Step::kWantWrite;
      case Phase::kSslRequest:
        if (!flush()) return fail(error_);
        if (!out_.empty()) return Step::kWantWrite;
        phase_ = Phase::kSslAnswer;
        break;
      case Phase::kSslAnswer: {
        char answer = 0;
        const ssize_t n = ::recv(fd_, &answer, 1, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Step::kWantRead;
        if (n <= 0) return fail("server closed the connection during SSL negotiation");
        if (answer == 'S') return start_tls();
        if (answer != 'N') {
          return fail(fmt::format("received invalid response to SSL negotiation: '{}'",
                                  answer >= 32 && answer < 127 ? answer : '?'));
        }
        if (target_.sslmode != "prefer") return fail("server does not support SSL, but SSL was required");
        begin_login();
        break;
      }
      case Phase::kHandshake: {
        ERR_clear_error();
        const int rc = SSL_connect(ssl_);
        if (rc != 1) {
          const int e = SSL_get_error(ssl_, rc);
          if (e == SSL_ERROR_WANT_READ) return Step::kWantRead;
          if (e == SSL_ERROR_WANT_WRITE) return Step::kWantWrite;
          const long verify = SSL_get_verify_result(ssl_);
          if (verify != X509_V_OK) {
            return fail(fmt::format("SSL error: certificate verify failed: {}",
                                    X509_verify_cert_error_string(verify)));
          }
          return fail(fmt::format("SSL handshake failed: {}", openssl_error()));
        }
        begin_login();
        break;
      }
      case Phase::kLogin:
        return login_io();
      case Phase::kDone:
        return Step::kDone;
      case Phase::kFailed:
        return Step::kFailed;
    }
  }
}

OwnLogin::Step OwnLogin::login_io() {
  char buf[16 * 1024];
  for (;;) {
    if (!flush()) return fail(error_);
    if (!out_.empty()) return Step::kWantWrite;
    ssize_t n = 0;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int r = SSL_read(ssl_, buf, sizeof buf);
      if (r <= 0) {
        const int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ) return Step::kWantRead;
        if (e == SSL_ERROR_WANT_WRITE) return Step::kWantWrite;
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0)) n = 0;
        else return fail(fmt::format("read from server failed: {}", openssl_error()));
      }
      n = r > 0 ? r : 0;
    } else {
      n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Step::kWantRead;
        return fail(fmt::format("read from server failed: {}", std::strerror(errno)));
      }
    }
    if (n == 0) return fail("server closed the connection unexpectedly during login");
    const auto status = login_->feed(std::string_view(buf, static_cast<std::size_t>(n)), out_);
    if (status == protocol::BackendLogin::Status::kFailed) {
      const protocol::Error& e = login_->error();
      const std::string& severity = login_->error_severity();
      // libpq's shape, so the pool's reading of login failures (reached_server, misfit_role) applies as well.
      return fail(fmt::format("connection to server at \"{}\", port {} failed: {}{}{}: {}", target_.host,
                              target_.port, severity.empty() ? "" : severity, severity.empty() ? "" : " ",
                              e.sqlstate, e.message));
    }
    if (status == protocol::BackendLogin::Status::kDone) {
      if (!flush()) return fail(error_);
      if (!check_session_attrs()) return Step::kFailed;
      phase_ = Phase::kDone;
      return Step::kDone;
    }
  }
}

bool OwnLogin::check_session_attrs() {
  // PostgreSQL 14+ reports both at login, so no query is needed (libpq asks with SHOW on older servers).
  const std::string& want = target_.target_session_attrs;
  if (want == "any" || want.empty()) return true;
  const std::string* standby = find_param(*login_, "in_hot_standby");
  const std::string* read_only = find_param(*login_, "default_transaction_read_only");
  const bool is_standby = standby != nullptr && *standby == "on";
  const bool is_read_only = is_standby || (read_only != nullptr && *read_only == "on");
  const char* misfit = nullptr;  // libpq's words
  if (want == "read-write" && is_read_only) misfit = "session is read-only";
  if (want == "read-only" && !is_read_only) misfit = "session is not read-only";
  if (want == "primary" && is_standby) misfit = "server is in hot standby mode";
  if (want == "standby" && !is_standby) misfit = "server is not in hot standby mode";
  if (misfit == nullptr) return true;
  fail(fmt::format("connection to server at \"{}\", port {} failed: {}", target_.host, target_.port, misfit));
  return false;
}

}  // namespace pooler::daemon
