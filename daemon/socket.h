// Non-blocking socket I/O on a libuv poll handle, plain or through an OpenSSL session, with an output queue
// that is written straight through when the peer keeps up and buffered (with backpressure signals) when not.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/uv_handle.h"

namespace pooler::daemon {

// Receives socket readiness. Implementations are the connection objects; calls happen on the loop thread.
class SocketOwner {
 public:
  virtual void on_readable() = 0;
  // The output queue just became empty (after having been non-empty): the owner may resume its producer.
  virtual void on_drained() = 0;
  // A write failed or the poll reported an error; the owner should close.
  virtual void on_socket_error(int uv_error) = 0;

 protected:
  ~SocketOwner() = default;
};

enum class IoStatus { kOk, kWouldBlock, kEof, kError };

struct IoResult {
  IoStatus status = IoStatus::kOk;
  std::size_t n = 0;
  int err = 0;  // errno or SSL error code for kError
};

class Socket {
 public:
  Socket() = default;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  // Starts polling `fd`. With owns_fd the fd is closed on destruction; server sockets belong to libpq.
  [[nodiscard]] int open(uv_loop_t* loop, int fd, bool owns_fd, SocketOwner* owner);
  // Stops polling and (if owned) closes the fd. Safe to call twice. Unless the peer said it is done (sent
  // Terminate), unread input is drained and the write side shut first, so the peer gets what was written
  // rather than a RST.
  void close(bool peer_done = false);
  [[nodiscard]] bool is_open() const { return static_cast<bool>(poll_); }
  [[nodiscard]] int fd() const { return fd_; }

  // Switch to TLS: all further I/O goes through `ssl` (not owned).
  void set_ssl(SSL* ssl);
  [[nodiscard]] bool is_tls() const { return ssl_ != nullptr; }
  // One step of a server-side TLS handshake on `ssl` (set_ssl first): kOk when done, kWouldBlock while it
  // waits for the peer (write interest is kept as the handshake needs it), kError when it failed.
  [[nodiscard]] IoStatus handshake();
  // The first byte waiting on the socket, without consuming it; nullopt when none is there yet.
  [[nodiscard]] std::optional<unsigned char> peek_byte() const;

  [[nodiscard]] IoResult read(char* buf, std::size_t len);
  // Bytes the TLS layer has already decrypted and buffered (no readiness event will announce them).
  [[nodiscard]] bool has_buffered_input() const;

  // Queues `data` for writing: written immediately when nothing is pending, the rest copied and flushed
  // when the socket becomes writable. Returns false on a hard write error (the socket is then unusable).
  bool send(std::string_view data);
  [[nodiscard]] std::size_t pending() const { return out_.size() - out_pos_; }

  // Whether readable events are delivered (backpressure: pause reading while the peer's queue is full).
  void set_reading(bool on);
  [[nodiscard]] bool reading() const { return reading_; }

  // Optional: deliver writability to the owner even with an empty queue (used while libpq connects).
  void set_write_interest(bool on);

 private:
  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
  void handle_poll(int status, int events);
  IoResult write_some(const char* data, std::size_t len);
  bool flush();
  void update_events();

  UvHandle<uv_poll_t> poll_;
  SocketOwner* owner_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool owns_fd_ = false;
  bool reading_ = false;
  bool write_interest_ = false;
  int events_ = 0;
  std::string out_;
  std::size_t out_pos_ = 0;
};

}  // namespace pooler::daemon
