// systemd's service notification protocol (sd_notify(3)) without libsystemd: each state change is one
// datagram of newline-separated VAR=value lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET.
// Every function is a no-op when the variable is unset (not started by systemd with Type=notify).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pooler::daemon {

// True when $NOTIFY_SOCKET names a socket we can address (a path starting with '/' or an abstract '@name').
[[nodiscard]] bool sd_notify_enabled() noexcept;

// Sends `state` as one datagram. Never throws and never blocks (MSG_DONTWAIT): when the socket is missing,
// full or refuses, the message is dropped, as libsystemd's sd_notify also only reports and moves on.
void sd_notify(std::string_view state) noexcept;

// READY=1: the service listens and accepts clients. Sent once at start-up and again after each reload.
void notify_ready(std::string_view status = {}) noexcept;

// RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC now> (systemd >= 253 requires the timestamp to tie the
// reload to this notification; older versions ignore it). Must be followed by notify_ready() when done,
// whether the new config was applied or rejected.
void notify_reloading(std::string_view status = {}) noexcept;

// STOPPING=1: the drain (SIGTERM) or fast stop (SIGINT) has begun.
void notify_stopping(std::string_view status = {}) noexcept;

// STATUS=<text>: the one-line summary `systemctl status` shows. Newlines are replaced by spaces.
void notify_status(std::string_view text) noexcept;

// EXTEND_TIMEOUT_USEC=<usec>: asks systemd to wait this much longer than its current start/stop timeout
// (e.g. when a drain may outlast TimeoutStopSec). Sent again to extend further.
void notify_extend_timeout(std::chrono::microseconds extra) noexcept;

// The datagram texts, pure so they can be tested without sockets. A non-empty status adds a STATUS= line.
[[nodiscard]] std::string ready_message(std::string_view status);
[[nodiscard]] std::string reloading_message(std::uint64_t monotonic_usec, std::string_view status);
[[nodiscard]] std::string stopping_message(std::string_view status);
[[nodiscard]] std::string status_message(std::string_view text);

// CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC against.
[[nodiscard]] std::uint64_t monotonic_usec() noexcept;

}  // namespace pooler::daemon
