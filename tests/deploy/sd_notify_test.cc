// Tests of daemon/sd_notify: a datagram socket made here plays systemd, and every datagram is checked byte
// for byte, through a path socket and through the abstract namespace.
#include "daemon/sd_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>

namespace pooler::daemon {
namespace {

// A bound AF_UNIX datagram socket standing in for systemd's notify socket; sets NOTIFY_SOCKET while alive.
class FakeSystemd {
 public:
  // abstract = false: a socket file in a fresh temporary directory; true: an abstract "@name".
  explicit FakeSystemd(bool abstract) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len;
    if (abstract) {
      std::random_device rd;
      name_ = "@pooler-sd-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
      std::memcpy(addr.sun_path + 1, name_.data() + 1, name_.size() - 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    } else {
      char tmpl[] = "/tmp/pooler-sd-notify-XXXXXX";
      EXPECT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
      dir_ = tmpl;
      name_ = dir_ + "/notify.sock";
      std::memcpy(addr.sun_path, name_.c_str(), name_.size() + 1);
      len = static_cast<socklen_t>(sizeof(addr));
    }
    EXPECT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len), 0) << std::strerror(errno);
    ::setenv("NOTIFY_SOCKET", name_.c_str(), 1);
  }
  ~FakeSystemd() {
    ::unsetenv("NOTIFY_SOCKET");
    if (fd_ >= 0) ::close(fd_);
    if (!dir_.empty()) {
      ::unlink(name_.c_str());
      ::rmdir(dir_.c_str());
    }
  }
  FakeSystemd(const FakeSystemd&) = delete;
  FakeSystemd& operator=(const FakeSystemd&) = delete;

  // The next datagram, or nothing if none arrives within a second (a correct sender has already queued it).
  std::optional<std::string> receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  // True when no datagram is waiting.
  bool quiet() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 50) == 0;
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string dir_;
  std::string name_;
};

// Splits "RELOADING=1\nMONOTONIC_USEC=123" and returns the number after MONOTONIC_USEC=.
std::uint64_t monotonic_field(const std::string& msg) {
  const std::string key = "\nMONOTONIC_USEC=";
  const auto at = msg.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoull(msg.c_str() + at + key.size(), nullptr, 10);
}

// Without NOTIFY_SOCKET nothing is enabled and every call returns quietly.
TEST(DeploySdNotify, DisabledWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(sd_notify_enabled());
  notify_ready("x");
  notify_reloading();
  notify_stopping();
  notify_status("x");
  sd_notify("READY=1");
}

// A value that is neither a path nor an abstract name (or too long for sun_path) disables notification.
TEST(DeploySdNotify, UnusableNotifySocketValuesDisable) {
  const std::string too_long = "/" + std::string(200, 'x');
  for (const std::string& value : {std::string(), std::string("@"), std::string("relative/path"),
                                   std::string("vsock:2:1234"), too_long}) {
    ::setenv("NOTIFY_SOCKET", value.c_str(), 1);
    EXPECT_FALSE(sd_notify_enabled()) << value;
    notify_ready();
  }
  ::unsetenv("NOTIFY_SOCKET");
}

// The start-up message through a socket file: READY=1 and the status line, nothing else.
TEST(DeploySdNotify, ReadyWithStatusThroughPathSocket) {
  FakeSystemd systemd(false);
  EXPECT_TRUE(sd_notify_enabled());
  notify_ready("listening on 127.0.0.1:6432, 2 pools");
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=listening on 127.0.0.1:6432, 2 pools");
  notify_ready();
  EXPECT_EQ(systemd.receive(), "READY=1");
  EXPECT_TRUE(systemd.quiet());
}

// A reload is RELOADING=1 with a CLOCK_MONOTONIC timestamp taken at the call, then READY=1 again.
TEST(DeploySdNotify, ReloadPairCarriesMonotonicTimestamp) {
  FakeSystemd systemd(false);
  const std::uint64_t before = monotonic_usec();
  notify_reloading();
  const std::uint64_t after = monotonic_usec();
  notify_ready("reloaded");
  const auto reloading = systemd.receive();
  ASSERT_TRUE(reloading.has_value());
  EXPECT_EQ(reloading->rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << *reloading;
  const std::uint64_t stamp = monotonic_field(*reloading);
  EXPECT_GE(stamp, before);
  EXPECT_LE(stamp, after);
  EXPECT_EQ(*reloading, "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(stamp));
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=reloaded");
}

// The timestamp is microseconds of CLOCK_MONOTONIC, the clock systemd compares it with.
TEST(DeploySdNotify, MonotonicUsecMatchesClockMonotonic) {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto expected = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
  const std::uint64_t got = monotonic_usec();
  EXPECT_GE(got, expected);
  EXPECT_LT(got - expected, 5'000'000u);
}

// Shutdown sends STOPPING=1, with a status when given.
TEST(DeploySdNotify, Stopping) {
  FakeSystemd systemd(false);
  notify_stopping();
  EXPECT_EQ(systemd.receive(), "STOPPING=1");
  notify_stopping("draining 12 clients");
  EXPECT_EQ(systemd.receive(), "STOPPING=1\nSTATUS=draining 12 clients");
}

// STATUS= alone; a newline in the text would start a new assignment, so it becomes a space.
TEST(DeploySdNotify, StatusIsOneLine) {
  FakeSystemd systemd(false);
  notify_status("3 pools, 10 clients");
  EXPECT_EQ(systemd.receive(), "STATUS=3 pools, 10 clients");
  notify_status("bad\nREADY=1\r\n");
  EXPECT_EQ(systemd.receive(), "STATUS=bad READY=1  ");
  notify_status("");
  EXPECT_TRUE(systemd.quiet());
}

// EXTEND_TIMEOUT_USEC for a drain that may outlast TimeoutStopSec.
TEST(DeploySdNotify, ExtendTimeout) {
  FakeSystemd systemd(false);
  notify_extend_timeout(std::chrono::seconds(40));
  EXPECT_EQ(systemd.receive(), "EXTEND_TIMEOUT_USEC=40000000");
  notify_extend_timeout(std::chrono::microseconds(0));
  EXPECT_TRUE(systemd.quiet());
}

// The raw call sends the given text verbatim as one datagram; an empty one sends nothing.
TEST(DeploySdNotify, RawStateIsSentVerbatim) {
  FakeSystemd systemd(false);
  sd_notify("READY=1\nSTATUS=a\nMAINPID=42");
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=a\nMAINPID=42");
  sd_notify("");
  EXPECT_TRUE(systemd.quiet());
}

// systemd usually hands out an abstract address ("@/org/freedesktop/systemd1/notify/…"): same datagrams.
TEST(DeploySdNotify, AbstractNamespace) {
  FakeSystemd systemd(true);
  EXPECT_TRUE(sd_notify_enabled());
  notify_ready("up");
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=up");
  notify_reloading();
  const auto reloading = systemd.receive();
  ASSERT_TRUE(reloading.has_value());
  EXPECT_EQ(reloading->rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u);
  notify_ready();
  EXPECT_EQ(systemd.receive(), "READY=1");
  notify_stopping();
  EXPECT_EQ(systemd.receive(), "STOPPING=1");
}

// A socket path nobody listens on: the message is dropped and nothing is thrown.
TEST(DeploySdNotify, MissingSocketIsIgnored) {
  ::setenv("NOTIFY_SOCKET", "/nonexistent/pooler-test/notify.sock", 1);
  EXPECT_TRUE(sd_notify_enabled());
  notify_ready("x");
  notify_stopping();
  ::unsetenv("NOTIFY_SOCKET");
}

// A receiver that never reads: once its queue is full, sends are dropped instead of blocking the loop.
TEST(DeploySdNotify, FullReceiverNeverBlocks) {
  FakeSystemd systemd(false);
  const int small = 1024;
  ::setsockopt(systemd.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5000; ++i) notify_status("filling the queue of a receiver that never reads");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  // The first ones were queued; the rest were dropped.
  EXPECT_EQ(systemd.receive(), "STATUS=filling the queue of a receiver that never reads");
}

// The pure message builders, for the daemon's own tests.
TEST(DeploySdNotify, MessageBuilders) {
  EXPECT_EQ(ready_message(""), "READY=1");
  EXPECT_EQ(ready_message("s"), "READY=1\nSTATUS=s");
  EXPECT_EQ(reloading_message(123, ""), "RELOADING=1\nMONOTONIC_USEC=123");
  EXPECT_EQ(reloading_message(123, "reloading /etc/pooler/pooler.toml"),
            "RELOADING=1\nMONOTONIC_USEC=123\nSTATUS=reloading /etc/pooler/pooler.toml");
  EXPECT_EQ(stopping_message(""), "STOPPING=1");
  EXPECT_EQ(status_message("a\nb"), "STATUS=a b");
  EXPECT_EQ(status_message(""), "");
}

}  // namespace
}  // namespace pooler::daemon
