// Cryptographically secure random bytes for salts, nonces and cancel keys, drawn from OpenSSL's generator a
// block at a time: RAND_bytes checks for a fork (a getpid() syscall) on every call, which a per-login call
// pays twice or more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace pooler::protocol {

// Fills `out`; aborts if the generator fails (as RAND_bytes failing would leave us without secrets).
void secure_random(std::span<std::uint8_t> out);

}  // namespace pooler::protocol
