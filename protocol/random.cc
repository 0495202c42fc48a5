// Buffered secure random bytes: see random.h.
#include "protocol/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

namespace pooler::protocol {

void secure_random(std::span<std::uint8_t> out) {
  // Per thread, so concurrent callers never share bytes; a forked child starts with an empty buffer only if
  // it forks between uses, which the daemon never does.
  thread_local std::array<std::uint8_t, 512> block{};
  thread_local std::size_t used = block.size();
  while (!out.empty()) {
    if (used == block.size()) {
      if (RAND_bytes(block.data(), static_cast<int>(block.size())) != 1) std::abort();
      used = 0;
    }
    std::size_t n = std::min(out.size(), block.size() - used);
    std::memcpy(out.data(), block.data() + used, n);
    // Bytes handed out are not kept where a later memory disclosure could find them.
    std::memset(block.data() + used, 0, n);
    used += n;
    out = out.subspan(n);
  }
}

}  // namespace pooler::protocol
