// sd_notify(3) over a plain AF_UNIX datagram socket: a fresh socket per message, because messages are rare
// (start, reload, stop, status) and a kept socket would be one more fd to inherit and to reopen after errors.
#include "daemon/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace pooler::daemon {
namespace {

// The address $NOTIFY_SOCKET names, or nothing. Abstract names ('@' in the variable) start with a NUL byte and
// are not NUL-terminated, so their length is carried in len. Other schemes (vsock: in systemd >= 254) are
// not supported and disable notification.
struct NotifyAddress {
  sockaddr_un addr{};
  socklen_t len = 0;
};

bool notify_address(NotifyAddress& out) noexcept {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr) return false;
  const std::string_view name(env);
  if (name.size() < 2 || (name[0] != '/' && name[0] != '@')) return false;
  // A path needs its terminating NUL inside sun_path; an abstract name uses every byte after the leading NUL.
  if (name.size() >= sizeof(out.addr.sun_path)) return false;
  out.addr = {};
  out.addr.sun_family = AF_UNIX;
  std::memcpy(out.addr.sun_path, name.data(), name.size());
  if (name[0] == '@') {
    out.addr.sun_path[0] = '\0';
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  } else {
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
  }
  return true;
}

// STATUS= is one line of the datagram: a newline inside the text would start a bogus assignment.
void append_status(std::string& msg, std::string_view status) {
  if (status.empty()) return;
  if (!msg.empty()) msg += '\n';
  msg += "STATUS=";
  for (char c : status) msg += (c == '\n' || c == '\r') ? ' ' : c;
}

// Formatting may allocate; a notification is never worth an exception escaping into a libuv callback.
template <typename Build>
void send_built(Build&& build) noexcept {
  if (!sd_notify_enabled()) return;
  try {
    const std::string msg = build();
    sd_notify(msg);
  } catch (...) {
  }
}

}  // namespace

bool sd_notify_enabled() noexcept {
  NotifyAddress address;
  return notify_address(address);
}

void sd_notify(std::string_view state) noexcept {
  if (state.empty()) return;
  NotifyAddress address;
  if (!notify_address(address)) return;
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  ssize_t sent;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&address.addr), address.len);
  } while (sent < 0 && errno == EINTR);
  ::close(fd);
}

std::string ready_message(std::string_view status) {
  std::string msg = "READY=1";
  append_status(msg, status);
  return msg;
}

std::string reloading_message(std::uint64_t monotonic_usec, std::string_view status) {
  std::string msg = "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec);
  append_status(msg, status);
  return msg;
}

std::string stopping_message(std::string_view status) {
  std::string msg = "STOPPING=1";
  append_status(msg, status);
  return msg;
}

std::string status_message(std::string_view text) {
  std::string msg;
  append_status(msg, text);
  return msg;
}

std::uint64_t monotonic_usec() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

void notify_ready(std::string_view status) noexcept {
  send_built([&] { return ready_message(status); });
}

void notify_reloading(std::string_view status) noexcept {
  send_built([&] { return reloading_message(monotonic_usec(), status); });
}

void notify_stopping(std::string_view status) noexcept {
  send_built([&] { return stopping_message(status); });
}

void notify_status(std::string_view text) noexcept {
  send_built([&] { return status_message(text); });
}

void notify_extend_timeout(std::chrono::microseconds extra) noexcept {
  if (extra.count() <= 0) return;
  send_built([&] { return "EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count()); });
}

}  // namespace pooler::daemon
