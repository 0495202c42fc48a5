// Finds message boundaries in a relayed v3 byte stream fed in arbitrary chunks, without copying the stream.
// The relay forwards bytes as they arrive; the scanner only tells it where messages start and end, and keeps
// the bodies of the few message types the pooler must interpret (ReadyForQuery, ErrorResponse, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "protocol/error.h"

namespace pooler::protocol {

// What the relay wants to happen at a message boundary.
enum class ScanStep {
  kContinue,    // keep scanning
  kStopBefore,  // stop with this message's first byte unconsumed (returned only from on_start)
  kStopAfter,   // stop right after this message (returned only from on_end)
};

struct ScanResult {
  std::size_t consumed = 0;  // bytes of the chunk scanned; the caller forwards or handles exactly these
  bool stopped = false;      // a handler asked to stop
};

class StreamScanner {
 public:
  // Bodies larger than this are not captured even when asked for (on_end then gets an empty body and
  // body_truncated() is true); ErrorResponse, ParameterStatus and ReadyForQuery are far below it.
  static constexpr std::size_t kMaxCapture = 64 * 1024;

  explicit StreamScanner(std::size_t max_message_size = SIZE_MAX) : max_message_size_(max_message_size) {}

  void set_max_message_size(std::size_t n) { max_message_size_ = n; }

  // True when the scanner sits exactly between two messages.
  [[nodiscard]] bool at_boundary() const { return state_ == State::kType; }
  [[nodiscard]] bool body_truncated() const { return truncated_; }

  // Scans `chunk`. The handler provides:
  //   ScanStep on_start(char type)              — a message's type byte was seen (nothing of it consumed yet)
  //   bool want_body(char type)                 — keep this message's body for on_end
  //   ScanStep on_end(char type, std::string_view body)  — the message is complete
  // Errors: a length below 4 (08P01) or a body above max_message_size (54000); the stream is unusable after.
  template <class Handler>
  [[nodiscard]] std::expected<ScanResult, Error> scan(std::string_view chunk, Handler& handler);

  void reset() {
    state_ = State::kType;
    header_len_ = 0;
    remaining_ = 0;
    capture_ = false;
    truncated_ = false;
    body_.clear();
  }

 private:
  enum class State {
    kType,    // waiting for the next message's type byte
    kLength,  // collecting the 4 length bytes
    kBody,    // passing remaining_ body bytes
  };

  [[nodiscard]] std::expected<void, Error> finish_length();

  std::size_t max_message_size_;
  State state_ = State::kType;
  char type_ = 0;
  std::uint8_t header_[4] = {};
  std::size_t header_len_ = 0;
  std::size_t remaining_ = 0;
  bool capture_ = false;
  bool truncated_ = false;
  std::string body_;
};

template <class Handler>
std::expected<ScanResult, Error> StreamScanner::scan(std::string_view chunk, Handler& handler) {
  std::size_t pos = 0;
  const std::size_t n = chunk.size();
  while (pos < n) {
    switch (state_) {
      case State::kType: {
        char type = chunk[pos];
        if (handler.on_start(type) == ScanStep::kStopBefore) return ScanResult{pos, true};
        type_ = type;
        header_len_ = 0;
        state_ = State::kLength;
        ++pos;
        break;
      }
      case State::kLength: {
        while (pos < n && header_len_ < 4) header_[header_len_++] = static_cast<std::uint8_t>(chunk[pos++]);
        if (header_len_ < 4) break;
        if (auto ok = finish_length(); !ok) return std::unexpected(ok.error());
        capture_ = handler.want_body(type_);
        truncated_ = false;
        body_.clear();
        if (capture_ && remaining_ > kMaxCapture) {
          capture_ = false;
          truncated_ = true;
        }
        if (remaining_ == 0) {
          state_ = State::kType;
          if (handler.on_end(type_, std::string_view{}) == ScanStep::kStopAfter) return ScanResult{pos, true};
        } else {
          state_ = State::kBody;
        }
        break;
      }
      case State::kBody: {
        std::size_t take = std::min(remaining_, n - pos);
        if (capture_) body_.append(chunk.data() + pos, take);
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) {
          state_ = State::kType;
          std::string_view body = capture_ ? std::string_view{body_} : std::string_view{};
          if (handler.on_end(type_, body) == ScanStep::kStopAfter) return ScanResult{pos, true};
        }
        break;
      }
    }
  }
  return ScanResult{pos, false};
}

}  // namespace pooler::protocol
