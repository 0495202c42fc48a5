// The loop thread's one read buffer: every socket read lands here and is relayed or parsed at once, so an
// idle connection owns no input buffer of its own.
#pragma once

#include <array>
#include <cstddef>

namespace pooler::daemon {

inline constexpr std::size_t kScratchSize = 64 * 1024;

inline char* scratch_buffer() {
  static thread_local std::array<char, kScratchSize> buf;
  return buf.data();
}

}  // namespace pooler::daemon
