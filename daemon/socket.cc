// Socket: the only place that calls read/write/SSL_read/SSL_write on connection fds.
#include "daemon/socket.h"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace pooler::daemon {

namespace {
// Output buffers above this are released when they drain, so idle connections stay small.
constexpr std::size_t kKeepOutCapacity = 16 * 1024;
}  // namespace

Socket::~Socket() { close(); }

int Socket::open(uv_loop_t* loop, int fd, bool owns_fd, SocketOwner* owner) {
  fd_ = fd;
  owns_fd_ = owns_fd;
  owner_ = owner;
  poll_ = UvHandle<uv_poll_t>::make();
  int rc = uv_poll_init_socket(loop, poll_.get(), fd);
  if (rc != 0) {
    poll_.abandon();
    return rc;
  }
  poll_->data = this;
  reading_ = true;
  update_events();
  return 0;
}

void Socket::close(bool peer_done) {
  poll_.reset();  // uv_close stops the poll (epoll DEL) synchronously, so the fd can be closed right after
  if (fd_ >= 0 && owns_fd_ && peer_done) {
    ::close(fd_);
  } else if (fd_ >= 0 && owns_fd_) {
    // Unread input makes close() send RST, and a RST can make the peer drop the ErrorResponse we just
    // wrote: read what is there (bounded) and half-close first.
    char sink[4096];
    for (int i = 0; i < 16 && ::recv(fd_, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    ::shutdown(fd_, SHUT_WR);
    ::close(fd_);
  }
  fd_ = -1;
  ssl_ = nullptr;
  events_ = 0;
  out_.clear();
  out_.shrink_to_fit();
  out_pos_ = 0;
}

void Socket::set_ssl(SSL* ssl) {
  ssl_ = ssl;
  if (ssl_ != nullptr) SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

IoResult Socket::read(char* buf, std::size_t len) {
  if (fd_ < 0) return {IoStatus::kError, 0, EBADF};
  if (ssl_ != nullptr) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, static_cast<int>(len));
    if (n > 0) return {IoStatus::kOk, static_cast<std::size_t>(n), 0};
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return {IoStatus::kWouldBlock, 0, 0};
    if (e == SSL_ERROR_ZERO_RETURN) return {IoStatus::kEof, 0, 0};
    if (e == SSL_ERROR_SYSCALL && n == 0) return {IoStatus::kEof, 0, 0};
    return {IoStatus::kError, 0, e == SSL_ERROR_SYSCALL ? errno : e};
  }
  for (;;) {
    ssize_t n = ::recv(fd_, buf, len, 0);
    if (n > 0) return {IoStatus::kOk, static_cast<std::size_t>(n), 0};
    if (n == 0) return {IoStatus::kEof, 0, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::kWouldBlock, 0, 0};
    return {IoStatus::kError, 0, errno};
  }
}

IoStatus Socket::handshake() {
  if (ssl_ == nullptr || fd_ < 0) return IoStatus::kError;
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    set_write_interest(false);
    return IoStatus::kOk;
  }
  const int e = SSL_get_error(ssl_, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    set_write_interest(e == SSL_ERROR_WANT_WRITE);
    return IoStatus::kWouldBlock;
  }
  return IoStatus::kError;
}

std::optional<unsigned char> Socket::peek_byte() const {
  if (fd_ < 0) return std::nullopt;
  unsigned char byte = 0;
  ssize_t n = 0;
  do {
    n = ::recv(fd_, &byte, 1, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return std::nullopt;
  return byte;
}

bool Socket::has_buffered_input() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }

IoResult Socket::write_some(const char* data, std::size_t len) {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    int n = SSL_write(ssl_, data, static_cast<int>(len));
    if (n > 0) return {IoStatus::kOk, static_cast<std::size_t>(n), 0};
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return {IoStatus::kWouldBlock, 0, 0};
    return {IoStatus::kError, 0, e == SSL_ERROR_SYSCALL ? errno : e};
  }
  for (;;) {
    ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n >= 0) return {IoStatus::kOk, static_cast<std::size_t>(n), 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::kWouldBlock, 0, 0};
    return {IoStatus::kError, 0, errno};
  }
}

bool Socket::send(std::string_view data) {
  if (fd_ < 0) return false;
  if (data.empty()) return true;
  if (pending() == 0) {
    // Fast path: nothing queued, so write straight from the caller's buffer without copying.
    while (!data.empty()) {
      IoResult r = write_some(data.data(), data.size());
      if (r.status == IoStatus::kError) return false;
      if (r.status == IoStatus::kWouldBlock || r.n == 0) break;
      data.remove_prefix(r.n);
    }
    if (data.empty()) return true;
    out_.clear();
    out_pos_ = 0;
  }
  out_.append(data);
  update_events();
  return true;
}

bool Socket::flush() {
  while (pending() > 0) {
    IoResult r = write_some(out_.data() + out_pos_, pending());
    if (r.status == IoStatus::kError) return false;
    if (r.status == IoStatus::kWouldBlock || r.n == 0) return true;
    out_pos_ += r.n;
  }
  out_pos_ = 0;
  out_.clear();
  if (out_.capacity() > kKeepOutCapacity) out_.shrink_to_fit();
  return true;
}

void Socket::set_reading(bool on) {
  if (reading_ == on) return;
  reading_ = on;
  update_events();
}

void Socket::set_write_interest(bool on) {
  if (write_interest_ == on) return;
  write_interest_ = on;
  update_events();
}

void Socket::update_events() {
  if (!poll_) return;
  int ev = (reading_ ? UV_READABLE : 0) | ((pending() > 0 || write_interest_) ? UV_WRITABLE : 0);
  if (ev == events_) return;
  events_ = ev;
  if (ev == 0) {
    uv_poll_stop(poll_.get());
  } else {
    uv_poll_start(poll_.get(), ev, &Socket::on_poll);
  }
}

void Socket::on_poll(uv_poll_t* handle, int status, int events) noexcept {
  auto* self = static_cast<Socket*>(handle->data);
  if (self == nullptr) return;
  self->handle_poll(status, events);
}

void Socket::handle_poll(int status, int events) {
  if (status < 0) {
    owner_->on_socket_error(status);
    return;
  }
  if ((events & UV_WRITABLE) != 0) {
    bool had_pending = pending() > 0;
    if (!flush()) {
      owner_->on_socket_error(UV_EPIPE);
      return;
    }
    update_events();
    if (had_pending && pending() == 0) {
      owner_->on_drained();
      if (fd_ < 0) return;  // the owner closed us
    } else if (write_interest_) {
      owner_->on_drained();
      if (fd_ < 0) return;
    }
  }
  if ((events & UV_READABLE) != 0 && reading_) owner_->on_readable();
}

}  // namespace pooler::daemon
